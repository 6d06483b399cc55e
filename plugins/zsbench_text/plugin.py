"""zsbench plugin: built-in text sources and text encoders (no torch import here)."""
from __future__ import annotations

import zsbench
from zsbench.specs import TextEncoderSpec, TextSourceSpec

from . import configs as c

_S = "zsbench_text.sources:"
_NEURON_KINDS = [f"neuron_{p}" for p in c.NEURON_PHASES]


@zsbench.hookimpl
def zsbench_text_sources() -> list[TextSourceSpec]:
    def spec(name: str, fn: str, config: type, kinds: list[str], doc: str,
             default: bool = False) -> TextSourceSpec:
        return TextSourceSpec(name=name, impl=_S + fn, config=config, text_kinds=kinds,
                              description=doc, default_for=kinds if default else [])

    return [
        spec("names", "names", c.NamesConfig, ["name"],
             "class names (dataset names, or a label map .txt/.npy)", default=True),
        spec("description", "description", c.DescriptionConfig, ["description"],
             "SMIE/PGFA complete descriptions (*_des.txt)", default=True),
        spec("skeleton_focused", "skeleton_focused", c.SkeletonFocusedConfig,
             ["skeleton_focused"], "PGFA skeleton-focused GPT-4 descriptions (*_ska_gpt4.txt)", default=True),
        spec("parts", "parts", c.PartsConfig, ["parts"],
             "GAP/PGFA body-part descriptions (pasta_openai_t01.txt, ntu_parts_from_GAP.txt)", default=True),
        spec("gap_sentence", "gap_sentence", c.GapSentenceConfig, ["sentence"],
             "GAP multi-sentence descriptions (sentence_openai_t01.txt)"),
        spec("gap_synonym", "gap_synonym", c.GapSynonymConfig, ["synonym"],
             "GAP synonyms (synonym_openai_t01.txt)"),
        spec("msf_label", "msf_label", c.MsfLabelConfig, ["name"],
             "MSF class labels (sem_info/lb_*.csv)"),
        spec("msf_action", "msf_action", c.MsfActionConfig, ["description"],
             "MSF action descriptions (sem_info/ad_*.csv)"),
        spec("msf_motion", "msf_motion", c.MsfMotionConfig, ["motion"],
             "MSF motion descriptions (sem_info/md_*.csv)", default=True),
        spec("flora_csv", "flora_csv", c.FloraCsvConfig, ["motion"],
             "Flora/SA-DVAE motion descriptions (semantics/*.csv)"),
        spec("flora_llm", "flora_llm", c.FloraLlmConfig, ["description"],
             "Flora LLM descriptions (semantics/*_llm.txt)"),
        spec("context", "context", c.ContextConfig, ["context"],
             "DVTA-style context descriptions (line per class, or zsbench JSON)", default=True),
        spec("phases", "phases", c.PhasesConfig, ["phases"],
             "phase-wise descriptions (zsbench JSON; shipped by the embedded benchmark)", default=True),
        spec("neuron", "neuron", c.NeuronConfig, _NEURON_KINDS,
             "Neuron spatial (cg/mg/fg) and temporal (fp/sp/tp) side information", default=True),
        spec("dataset", "dataset_texts", c.DatasetTextsConfig, [],
             "the text kinds the dataset ships itself (zsbench JSON)"),
    ]


@zsbench.hookimpl
def zsbench_text_encoders() -> list[TextEncoderSpec]:
    return [
        TextEncoderSpec(name="sbert", impl="zsbench_text.encoders:SbertEncoder",
                        config=c.SbertConfig,
                        description="Sentence-BERT (sentence-transformers); default "
                        "all-MiniLM-L6-v2 (384-d), offline"),
        TextEncoderSpec(name="clip", impl="zsbench_text.encoders:ClipEncoder",
                        config=c.ClipConfig,
                        description="CLIP text encoder (open_clip); local weights, or "
                        "pretrained: random for tests"),
    ]
