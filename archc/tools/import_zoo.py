"""The round trip over the zoos (issue 15, item 3): which models `archc import` covers, and the table of
docs/import.md that tests/test_import.py holds true.

The models: every torchvision classification model, and timm models chosen across its families (TIMM_MODELS).
This module imports torch (through the importer).
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from dataclasses import dataclass

from archc.tools.importer import Verdict, round_trip

# One to a few models per timm family, the smallest of each where there is a choice (CNN families get more): the
# families issue 15 names also have one model for each variant of theirs (a block, stem, attention, norm or depth
# scheme), the smallest, under about 60M parameters, chosen before any was run (docs/import.md, Coverage).
TIMM_MODELS = """
resnet10t resnet14t resnet18 resnet18d resnet26 resnet26d resnet34 resnet34d resnet50 resnet50d resnet101 resnetrs50
resnetblur18 resnetaa34d resnetv2_18 gcresnet33ts seresnet18 ecaresnet26t seresnext26d_32x4d ecaresnext26t_32x4d
resnet50_gn wide_resnet50_2 resnext50_32x4d skresnet18 skresnext50_32x4d efficientnet_b0 efficientnet_b1
efficientnet_b0_gn efficientnetv2_rw_t efficientnet_lite0 efficientnet_es mnasnet_100 mobilenetv2_100 mobilenetv1_100
spnasnet_100 tf_efficientnet_b0 fbnetc_100 semnasnet_100 mixnet_s mixnet_m tf_mixnet_s tinynet_a mobilenetv3_large_100
mobilenetv3_small_100 lcnet_050 fbnetv3_b mobilenetv3_rw tf_mobilenetv3_small_minimal_100 mobilenetv4_conv_small
regnetx_002 regnetx_004 regnetx_006 regnety_002 regnety_004 regnetz_005 regnetz_b16 regnetv_040 convnext_atto
convnext_femto convnext_pico convnext_nano convnext_tiny convnextv2_atto densenet121 densenet169 densenetblur121d
vgg11 vgg11_bn vgg13 dla34 dla46_c dla60 dla46x_c dla60_res2net dpn48b dpn68 ghostnet_050 ghostnet_100 ghostnetv2_100
hrnet_w18_small inception_v3 inception_v4 inception_resnet_v2 legacy_xception xception41 xception41p cspresnet50
cspdarknet53 cs3darknet_s cs3darknet_focus_s cs3sedarknet_l cspresnext50 repvgg_a0 repvgg_b1g4 gernet_s gernet_m
mobileone_s0 resnet32ts ese_vovnet19b_dw ese_vovnet19b_slim rexnet_100 rexnetr_100 res2net50_26w_4s res2next50
res2net50d resnest14d selecsls42b legacy_seresnet18 legacy_seresnext26_32x4d tresnet_m nf_resnet26 hardcorenas_a
repghostnet_050 repvit_m1 hgnet_tiny hgnetv2_b0 mobilevit_xxs efficientformer_l1 levit_128s vit_tiny_patch16_224
vit_small_patch16_224 deit_tiny_patch16_224 swin_tiny_patch4_window7_224 mixer_s16_224 resmlp_12_224 convmixer_768_32
pit_ti_224 coat_lite_tiny visformer_tiny edgenext_xx_small fastvit_t8 starnet_s1 fasternet_t0 tiny_vit_5m_224
coatnet_nano_rw_224 poolformer_s12 convformer_s18 mambaout_femto inception_next_atto pvt_v2_b0 twins_svt_small
crossvit_tiny_240 cait_xxs24_224 xcit_nano_12_p16_224 gcvit_xxtiny davit_tiny nest_tiny sequencer2d_s shvit_s1
efficientvit_b0 efficientvit_m0 lcnetv2_small cspnext_s volo_d1_224 tnt_s_patch16_224 convit_tiny focalnet_tiny_srf
hiera_tiny_224 mvitv2_tiny nextvit_small efficientvim_m1 swiftformer_xs rdnet_tiny lowformer_b0 darknet17
bat_resnext26ts
""".split()
# The fast default set of tests/test_import.py: a few of each verdict, the families of specs/ among them.
DEFAULT = (
    "torchvision:resnet18",
    "torchvision:mobilenet_v2",
    "torchvision:squeezenet1_1",
    "torchvision:densenet121",
    "torchvision:shufflenet_v2_x0_5",
    "torchvision:vit_b_16",
    "timm:resnet10t",
    "timm:efficientnet_b0",
    "timm:cspresnet50",
    "timm:repvit_m1",
    "timm:tf_mobilenetv3_small_minimal_100",  # Conv2dSame: conv of the pad its forward computes at the size
)


def sources() -> list[str]:
    """Every model of the table: torchvision's classification models, then the timm selection."""
    import torchvision

    return [f"torchvision:{n}" for n in torchvision.models.list_models(module=torchvision.models)] + [f"timm:{n}" for n in TIMM_MODELS]


def run(names: list[str]) -> Iterator[Verdict]:
    for name in names:
        verdict = round_trip(name)
        gc.collect()
        yield verdict


@dataclass
class Row:
    source: str
    verdict: str
    reason: str


ROW = re.compile(r"^\| `([^`]+)` \| (equal|not equal|not imported) \| (.*) \|$")


def read_table(text: str) -> list[Row]:
    """The coverage table of docs/import.md."""
    return [Row(m.group(1), m.group(2), m.group(3)) for line in text.splitlines() if (m := ROW.match(line))]


def reason_text(verdict: Verdict) -> str:
    """The reason column: the error or first difference, one line, without the local paths."""
    text = re.sub(r"\s+", " ", verdict.reason)
    text = re.sub(r"\(`%[^`]*`\)", "", text).strip()
    return text.replace("|", "\\|")


# What keeps a model out, by the words of its reason: (pattern, the construct).
BLOCKERS = (
    (r"reduction by sum", "a reduction by sum (`x.sum(1)`; the language has `mean` and `amax`)"),
    (r"of the parameter", "a parameter reshaped into a weight in the forward (weight standardisation)"),
    (r"moves the batch|indexing the batch|`unbind`", "tokens regrouped across the batch (`qkv.permute(2, 0, ...)`, `unbind`, windows)"),
    (r"slicing", "indexing or slicing a tensor"),
    (r"size in the forward|attribute \(`x.shape`\)", "reading a tensor's size in the forward"),
    (r"ModuleList|ModuleDict", "a ModuleList or ModuleDict whose items the forward applies"),
    (r"the items of `\w+` were built for", "a list of modules whose items take inputs of different widths (E036)"),
    (r"buffer", "a buffer of a module's own (relative position indices, BlurPool's fixed kernel)"),
    (r"list built at run time|to list|not run on one tensor", "a list of tensors passed between modules (RDNet's features)"),
    (r"cat` on dimension", "`cat` on the batch"),
    (r"is not a name", "numbered members applied by a forward (timm's sequential lists)"),
    (r"activation after its norm", "timm's BatchNormAct2d as an item of a Sequential"),
    (r"more than one input|with \d+ arguments|several values|returns a (list|tup)", "a module taking or returning more than one tensor"),
    (
        r"never applies it|instead of applying it|weight and a bias its forward computes",
        "a member the forward reads other than by applying it",
    ),
    (r"makes from sizes", "a tensor the forward makes from sizes that archc does not recognise"),
    (r"E073|in terms of", "one block for instances at input sizes its generated class cannot derive (E073)"),
    (r"has no archc op", "a torch function or module the op table lacks (`pow`, `conv_transpose2d`, ...)"),
    (r"E121", "a forward torch.fx cannot trace (branches on the input's values, item assignment, an LSTM)"),
)


def blockers(rows: list[dict[str, object]]) -> list[tuple[str, list[str]]]:
    """(construct, models) for the models that are not equal, the constructs that keep most first."""
    found: dict[str, list[str]] = {}
    for r in rows:
        if r["verdict"] == "equal":
            continue
        what = next((w for pattern, w in BLOCKERS if re.search(pattern, str(r["reason"]))), "other: see the table")
        found.setdefault(what, []).append(str(r["source"]))
    return sorted(found.items(), key=lambda item: -len(item[1]))


def markdown(rows: list[dict[str, object]]) -> str:
    """The coverage table (rows as scripts/import_table.py prints them) with its figures."""
    equal = sum(r["verdict"] == "equal" for r in rows)
    lines = [f"**{equal} of {len(rows)}** models import and round-trip equal"]
    for library in ("torchvision", "timm"):
        mine = [r for r in rows if str(r["source"]).startswith(f"{library}:")]
        lines.append(f"- {library}: {sum(r['verdict'] == 'equal' for r in mine)} of {len(mine)}")
    lines += ["", "What keeps the others out, the first construct each needs (the language is growing several, issue 14):", ""]
    for what, models in blockers(rows):
        names = ", ".join(f"`{m}`" for m in models[:4]) + (f" and {len(models) - 4} more" if len(models) > 4 else "")
        lines.append(f"- {what}: {len(models)} ({names})")
    lines += ["", "| model | verdict | reason |", "|---|---|---|"]
    for r in rows:
        reason = "" if r["verdict"] == "equal" else r["reason"]
        lines.append(f"| `{r['source']}` | {r['verdict']} | {reason} |")
    return "\n".join(lines) + "\n"
