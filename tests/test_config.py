import pytest

from zsbench.api import ZsbenchError
from zsbench.config import apply_override, build_run_config, parse_value, read_config_file


def test_parse_values():
    assert parse_value("3") == 3
    assert parse_value("0.5") == 0.5
    assert parse_value("true") is True
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("hello") == "hello"


def test_option_words_stay_strings_only_true_false_are_booleans(tmp_path):
    # YAML 1.1 would read these as booleans; the configs' Literal options expect strings
    for word in ("off", "on", "yes", "no", "y", "n", "Off", "NO"):
        assert parse_value(word) == word
    assert parse_value("True") is True and parse_value("FALSE") is False
    assert parse_value("[off, true]") == ["off", True]
    cfg = build_run_config({"plugin": "devise"}, ["diagnostics=off", "encoder.autocast=off"])
    assert cfg.diagnostics == "off" and cfg.sections["encoder"] == {"autocast": "off"}
    f = tmp_path / "run.yaml"
    f.write_text("plugin: devise\ndiagnostics: off\nencoder:\n  autocast: off\n"
                 "  edge_importance: false\n", encoding="utf-8")
    data = read_config_file(f)
    assert data["diagnostics"] == "off" and data["encoder"] == {"autocast": "off",
                                                                "edge_importance": False}


def test_overrides_nest_and_sections_are_split():
    cfg = build_run_config({"plugin": "devise"}, ["seed=3", "method.lr=0.01", "text.names.x=1"])
    assert cfg.seed == 3
    assert cfg.sections["method"] == {"lr": 0.01}
    assert cfg.sections["text"] == {"names": {"x": 1}}


def test_unknown_field_did_you_mean():
    with pytest.raises(ZsbenchError) as e:
        build_run_config({"plugin": "devise"}, ["sed=3"])
    msg = str(e.value)
    assert "unknown field 'sed'" in msg and "did you mean 'seed'" in msg


def test_literal_error_names_field_value_and_allowed():
    with pytest.raises(ZsbenchError) as e:
        build_run_config({"plugin": "devise", "device": "tpu"}, [])
    msg = str(e.value)
    assert "'device'" in msg and "'tpu'" in msg and "'cpu'" in msg and "'cuda'" in msg


def test_bad_override_syntax():
    with pytest.raises(ZsbenchError, match="key=value"):
        apply_override({}, "novalue")


def test_config_files_toml_and_yaml(tmp_path):
    t = tmp_path / "run.toml"
    t.write_text('plugin = "devise"\nseed = 4\n[method]\nepochs = 2\n')
    y = tmp_path / "run.yaml"
    y.write_text("plugin: devise\nseed: 5\nmethod:\n  epochs: 3\n")
    assert build_run_config(read_config_file(t), []).sections["method"]["epochs"] == 2
    assert build_run_config(read_config_file(y), []).seed == 5
    bad = tmp_path / "bad.toml"
    bad.write_text("plugin = \n")
    with pytest.raises(ZsbenchError, match="bad.toml"):
        read_config_file(bad)
