"""Config models of the built-in protocols (defaults = the papers' settings)."""
from __future__ import annotations

from typing import Any, Callable, Literal

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from zsbench.specs import PluginConfig

PartitionRule = Literal["xsub", "xview", "xset"]


class ProtocolConfig(PluginConfig):
    """Options shared by the split-file protocols."""

    sample_rule: PartitionRule | None = Field(
        default=None, description="sample partition: xsub (NTU-60/120, PKU), xview (NTU-60, "
        "PKU) or xset (NTU-120); default: the first benchmark the split lists (xsub)")
    splits: list[str] | None = Field(
        default=None, description="run only these splits, by id (synse_ntu60_55_5), name "
        "(fold0) or size group (55/5); default: every split of the dataset")
    check_class_names: bool = Field(
        default=True, description="compare the dataset's class names with the split file")


class SynseConfig(ProtocolConfig):
    use_validation: bool = Field(
        default=True, description="attach SynSE's validation classes (carved from the seen "
        "classes; GZSL calibration / gate selection)")


class StarConfig(ProtocolConfig):
    split_set: Literal["fixed", "random", "all"] = Field(
        default="fixed", description="fixed: 55/5, 48/12, 110/10, 96/24, PKU 46/5, 39/12; "
        "random: the three 'ablation/starsmie' 5-class (NTU-120: 10-class) splits")


class OneShotConfig(ProtocolConfig):
    sample_rule: Literal["all", "xsub", "xview", "xset"] | None = Field(  # type: ignore[assignment]
        default=None, description="all (official NTU-120 one-shot: every sample of the "
        "auxiliary classes trains, every other novel-class sample is tested) or a partition; "
        "default: all for NTU/PKU, xsub for the embedded benchmark")
    use_listed_exemplars: bool = Field(
        default=True, description="use the exemplar samples the split lists (NTU-120 "
        "official) when the dataset has sample names")
    support_seed: int | None = Field(
        default=None, description="None: the first candidate sample of each novel class (in "
        "dataset order) is its support sample; an integer: a seeded random one")


class CrossDatasetConfig(PluginConfig):
    sample_rule: Literal["xsub", "xview"] = Field(
        default="xsub", description="partition applied to both datasets: source training "
        "part for training, target test part for testing (PGFA: as Setting I = xsub)")
    splits: list[str] | None = Field(
        default=None, description="class splits to run, by number (1, 2, 3) or entry id")
    direction: Literal["both", "forward", "backward"] = Field(
        default="both", description="forward: train on the given dataset, test on the partner; "
        "backward: the reverse; both: both (reported as separate groups)")
    name_overlap: Literal["keep", "drop_from_train"] = Field(
        default="keep", description="keep (PGFA protocol) or drop source classes whose name "
        "equals a target test class from training (strict zero-shot)")
    partner: str | None = Field(
        default=None, description="name under which the loader finds the partner dataset; "
        "default: ntu60 <-> pku_mmd (PKU-MMD Part I)")
    loader: SkipJsonSchema[Callable[[str], Any] | None] = Field(
        default=None, exclude=True, description="callable name -> SkeletonDataset used to "
        "load the partner dataset (set by the runner)")
    domain_rule: PartitionRule = Field(
        default="xview", description="embedded benchmark only: the partition whose two parts "
        "act as the two domains (xview: training cameras vs test camera)")
