"""The ``model`` section: type map, descriptor (or a ``hybrid`` list of them), optional type embedding, fitting net.

Lengths are in Angstrom, energies in eV.

Resolved section: ``sel`` may be "auto" in input.json; :meth:`ModelConfig.resolve_sel` returns the section with
every "auto" replaced by numbers (in each hybrid member, each at its own rcut). That resolved section, dumped with
``model_dump(mode="json")``, is what checkpoints (``model_params``), out.json and frozen files
(``model_def_script``) hold, and what models are built and rebuilt from (:func:`deeppot.model.build.build_model`).
"""

from __future__ import annotations

import builtins
import math
from typing import Annotated, Any, Callable, ClassVar, Literal, Optional

from pydantic import BeforeValidator, Field, field_validator, model_validator

from deeppot.config.base import (
    Activation,
    LayerSizes,
    Precision,
    Section,
    TypePairs,
    TypeRegistry,
    resolve_precision,
    type_index_problems,
)
from deeppot.config.messages import Path, SectionProblems, show
from deeppot.config.modifier import MODIFIERS, DipoleChargeModifierConfig

DEFAULT_SEL_FACTOR = 1.1
"""Safety factor applied to the neighbor statistics when ``sel`` is "auto"."""


def _check_sel(value: Any) -> Any:
    if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        return value
    if isinstance(value, str) and _sel_factor(value) is not None:
        return value
    raise ValueError(
        "expected a list of integers (one per type) or 'auto' / 'auto:<factor>' "
        f"with a positive factor, got {show(value)}"
    )


def _sel_factor(sel: str) -> float | None:
    """The factor in "auto" / "auto:<factor>", or ``None`` if ``sel`` is malformed."""
    if sel == "auto":
        return DEFAULT_SEL_FACTOR
    head, _, tail = sel.partition(":")
    if head != "auto" or not tail:
        return None
    try:
        factor = float(tail)
    except ValueError:
        return None
    return factor if factor > 0 and math.isfinite(factor) else None


Sel = Annotated[list[int] | str, BeforeValidator(_check_sel)]

NeighborStat = Callable[..., list[int]]
"""(rcut (Angstrom), mixed_types=False) -> the largest number of neighbors of each type within rcut around any atom
of the data; with mixed_types=True, [the largest number of neighbors of any type]."""


class DescriptorConfig(Section):
    """Options shared by the type-blocked embedding descriptors ``se_e2_a``, ``se_e2_r`` and ``se_e3``."""

    type: str
    """Descriptor type (canonical name)."""
    sel: Sel = "auto"
    """Maximum number of neighbors of each type within ``rcut`` (one integer per type),
    or "auto" / "auto:<factor>" to derive it from the data's neighbor statistics."""
    rcut: float = Field(6.0, gt=0)
    """Cut-off radius in Angstrom."""
    rcut_smth: float = Field(0.5, ge=0)
    """Radius in Angstrom where the smooth switching to zero starts; must be below ``rcut``."""
    neuron: LayerSizes = [10, 20, 40]
    """Widths of the embedding-network layers."""
    activation_function: Activation = "tanh"
    """Activation function of the embedding network."""
    resnet_dt: bool = False
    """Use a trainable timestep in the embedding-network ResNet connections."""
    precision: Precision = "default"
    """Precision of the embedding network ("default" means float64)."""
    trainable: bool = True
    """Whether the descriptor parameters are trained."""
    seed: int | None = None
    """Random seed for parameter initialization; ``None`` draws one."""
    exclude_types: TypePairs = []
    """Pairs of type indices whose interaction is excluded from the descriptor."""
    env_protection: float = 0.0
    """Protection added to distances in the environment matrix to avoid division by zero (Angstrom)."""
    set_davg_zero: bool = False
    """Set the mean of the environment-matrix statistics to zero."""

    @model_validator(mode="after")
    def _check_radii(self) -> DescriptorConfig:
        if self.rcut_smth >= self.rcut:
            raise SectionProblems(
                [(("rcut_smth",), f"{self.rcut_smth} must be smaller than rcut ({self.rcut}); lower rcut_smth")]
            )
        return self

    TAKES_TYPE_EMBEDDING: ClassVar[bool] = False
    """Whether the model-level ``type_embedding`` section applies to this descriptor."""

    @property
    def sel_is_auto(self) -> bool:
        """True when ``sel`` must be computed from neighbor statistics."""
        return isinstance(self.sel, str)

    @property
    def resolved_precision(self) -> str:
        """Concrete dtype name of the embedding network ("default" becomes "float64")."""
        return resolve_precision(self.precision)

    @property
    def resolved_sel(self) -> list[int]:
        """The numeric sel of a resolved section (:meth:`resolve_sel`)."""
        if isinstance(self.sel, str):
            raise ValueError(f"sel '{self.sel}' is not resolved yet; resolve it from neighbor statistics first")
        return list(self.sel)

    def neighbor_counts(self, stat: NeighborStat) -> list[int]:
        """The neighbor counts ``sel`` is compared with: per type within this descriptor's rcut."""
        return [int(count) for count in stat(self.rcut)]

    def sel_from_counts(self, max_nbor: list[int]) -> list[int]:
        """Per-type neighbor counts.

        For "auto"/"auto:<factor>", ``max_nbor[t]`` (the largest number of type-t
        neighbors seen in the data) is scaled by the factor and rounded up to a
        multiple of 4; an explicit list is returned unchanged.
        """
        if isinstance(self.sel, list):
            return list(self.sel)
        factor = _sel_factor(self.sel)
        assert factor is not None  # guaranteed by validation
        return [4 * math.ceil(int(count * factor) / 4) for count in max_nbor]

    def resolve_sel(self, stat: NeighborStat, previous: Optional[dict] = None) -> DescriptorConfig:
        """This section with a numeric sel: an explicit list stays; "auto" takes the sel of ``previous`` (the
        resolved section of a checkpoint) when that is a descriptor of the same type, else it comes from the
        neighbor statistics ``stat`` (:meth:`sel_from_counts` of :meth:`neighbor_counts`)."""
        if isinstance(self.sel, list):
            return self
        if previous is not None and previous.get("type") == self.type and isinstance(previous.get("sel"), list):
            return self.model_copy(update={"sel": list(previous["sel"])})
        return self.model_copy(update={"sel": self.sel_from_counts(self.neighbor_counts(stat))})

    def leaf_sections(self, path: Path = ("descriptor",)) -> list[tuple[Path, DescriptorConfig]]:
        """(path in the model section, section) of each descriptor with its own rcut and sel: just this one."""
        return [(path, self)]

    def type_problems(self, ntypes: int) -> list[tuple[Path, str]]:
        """Problems of type counts and indices against model/type_map, paths relative to this section."""
        found: list[tuple[Path, str]] = []
        if isinstance(self.sel, list) and len(self.sel) != ntypes:
            found.append(
                (("sel",), f"has {len(self.sel)} entries but model/type_map has {ntypes} types; give one per type")
            )
        return found + type_index_problems(self.exclude_types, ntypes, ("exclude_types",))


class SeE2AConfig(DescriptorConfig):
    """DeepPot-SE descriptor with radial and angular information (``se_e2_a``, alias ``se_a``)."""

    ALIASES: ClassVar[dict[str, str]] = {"n_axis_neuron": "axis_neuron"}

    TAKES_TYPE_EMBEDDING: ClassVar[bool] = True

    type: Literal["se_e2_a"] = "se_e2_a"
    """Descriptor type."""
    type_one_side: bool = False
    """One embedding network per neighbor type (True) or per (center, neighbor) pair (False)."""
    axis_neuron: int = Field(4, gt=0)
    """Number of columns of the embedding matrix used as the axis (sub-matrix) size."""


class SeE2RConfig(DescriptorConfig):
    """DeepPot-SE descriptor with radial information only (``se_e2_r``, alias ``se_r``)."""

    type: Literal["se_e2_r"] = "se_e2_r"
    """Descriptor type."""
    type_one_side: bool = False
    """Accepted for DeePMD-kit compatibility; like DeePMD-kit's PyTorch backend, se_e2_r always has one
    embedding network per neighbor type."""


class SeE3Config(DescriptorConfig):
    """DeepPot-SE descriptor from three-body angles (``se_e3``, aliases ``se_at``, ``se_a_3be``, ``se_t``)."""

    type: Literal["se_e3"] = "se_e3"
    """Descriptor type."""


UNLIMITED_RCUT = 1.0e4
"""Angstrom: the neighbor-search radius of ``se_a_mask``, which has no cut-off (DeePMD-kit's op keeps virtual
atoms 10^4 Angstrom away): every atom of a cluster is a neighbor. Its frames are isolated clusters (a cell is
refused), whose neighbor search never looks farther than the cluster's extent."""


class SeAMaskConfig(DescriptorConfig):
    """se_e2_a for clusters padded with virtual atoms (``se_a_mask``, DeePMD-kit TF): every real atom is a neighbor
    (no cut-off, no switch, no statistics); the real/virtual mask is ``aparam``, so fitting_net needs
    ``numb_aparam: 1`` and ``use_aparam_as_mask: true``. ``sel[t]``: the most real type-t atoms of a frame."""

    ALIASES: ClassVar[dict[str, str]] = {"n_axis_neuron": "axis_neuron"}

    type: Literal["se_a_mask"] = "se_a_mask"
    """Descriptor type."""
    type_one_side: bool = False
    """One embedding network per neighbor type (True) or per (center, neighbor) pair (False)."""
    axis_neuron: int = Field(4, gt=0)
    """Number of columns of the embedding matrix used as the axis (sub-matrix) size."""
    # DeePMD-kit's se_a_mask has none of these keys (ClassVars are not input keys)
    rcut: ClassVar[float] = UNLIMITED_RCUT
    rcut_smth: ClassVar[float] = 0.0
    env_protection: ClassVar[float] = 0.0
    set_davg_zero: ClassVar[bool] = True


def axis_rule_problems(axis_rule: list[int], sel_a: list[int], sel_r: list[int]) -> list[str]:
    """What is wrong with loc_frame's ``axis_rule`` for these sel_a / sel_r (empty: nothing). Six entries per
    center type: (class, type, index) of axis neighbor 1, then of axis neighbor 2; class 0 picks from the sel_a
    ("a") neighbors of that type, class 1 from the sel_r ("r") ones; index 0 is the nearest."""
    ntypes = len(sel_a)
    if len(axis_rule) != 6 * ntypes:
        return [f"has {len(axis_rule)} entries; it needs 6 per type (class, type, index of each of the two axis "
                f"neighbors), {6 * ntypes} for {ntypes} types"]
    problems = []
    for center in range(ntypes):
        for axis in range(2):
            first = 6 * center + 3 * axis
            klass, ntype, index = axis_rule[first : first + 3]
            where = f"entries {first}-{first + 2} (axis neighbor {axis + 1} of type {center})"
            if klass not in (0, 1):
                problems.append(f"{where}: class {klass} must be 0 (a sel_a neighbor) or 1 (a sel_r neighbor)")
            elif not 0 <= ntype < ntypes:
                problems.append(f"{where}: neighbor type {ntype} must be a type index 0..{ntypes - 1} (DeePMD-kit's "
                                "negative 'any type but' rule is not supported)")
            else:
                sel, name = (sel_a, "sel_a") if klass == 0 else (sel_r, "sel_r")
                if not 0 <= index < sel[ntype]:
                    problems.append(f"{where}: index {index} needs {name}[{ntype}] > {index}, but {name}[{ntype}] is "
                                    f"{sel[ntype]}; raise {name}[{ntype}] or name another axis neighbor")
    return problems


NonNegative = Annotated[int, Field(ge=0)]


class LocFrameConfig(Section):
    """Neighbor coordinates in a local frame set by two axis neighbors (``loc_frame``, DeePMD-kit TF). Its
    neighbor slots are type-blocked with ``sel_a[t] + sel_r[t]`` slots for type t (:attr:`sel`), the sel_a[t]
    nearest first. Not smooth at rcut (by design)."""

    TAKES_TYPE_EMBEDDING: ClassVar[bool] = False
    sel_is_auto: ClassVar[bool] = False
    resolved_precision: ClassVar[str] = "float64"
    exclude_types: ClassVar[list[list[int]]] = []

    type: Literal["loc_frame"] = "loc_frame"
    """Descriptor type."""
    sel_a: list[NonNegative]
    """Per type: how many of the nearest neighbors of that type enter with full coordinates (1/r and direction)."""
    sel_r: list[NonNegative]
    """Per type: how many of the next-nearest neighbors of that type enter with 1/r only."""
    rcut: float = Field(6.0, gt=0)
    """Cut-off radius in Angstrom (no smoothing)."""
    axis_rule: list[int]
    """Six integers per type: (class, type, index) of the two axis neighbors that set the frame of its atoms."""

    @model_validator(mode="after")
    def _check_rule(self) -> LocFrameConfig:
        if len(self.sel_a) != len(self.sel_r):
            raise SectionProblems([(("sel_r",), f"has {len(self.sel_r)} entries but sel_a has {len(self.sel_a)}; "
                                    "give one per type in both")])
        problems = axis_rule_problems(self.axis_rule, self.sel_a, self.sel_r)
        if problems:
            raise SectionProblems([(("axis_rule",), problem) for problem in problems])
        return self

    @property
    def sel(self) -> list[int]:
        """Neighbor slots per type: sel_a + sel_r."""
        return [a + r for a, r in zip(self.sel_a, self.sel_r)]

    resolved_sel = sel

    def neighbor_counts(self, stat: NeighborStat) -> list[int]:
        """The neighbor counts ``sel`` is compared with: per type within rcut."""
        return [int(count) for count in stat(self.rcut)]

    def resolve_sel(self, stat: NeighborStat, previous: Optional[dict] = None) -> LocFrameConfig:
        """sel_a and sel_r are always numbers."""
        return self

    def leaf_sections(self, path: Path = ("descriptor",)) -> list[tuple[Path, LocFrameConfig]]:
        return [(path, self)]

    def type_problems(self, ntypes: int) -> list[tuple[Path, str]]:
        if len(self.sel_a) == ntypes:
            return []
        return [(("sel_a",), f"has {len(self.sel_a)} entries but model/type_map has {ntypes} types; give one per "
                 "type (in sel_r too, and 6 per type in axis_rule)")]


def _check_mixed_sel(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                                 for v in value) and sum(value) > 0:
        return [sum(value)]  # DeePMD-kit: only the sum matters
    if isinstance(value, str) and _sel_factor(value) is not None:
        return value
    raise ValueError(
        "expected the number of neighbors of any type (an integer, or a list whose sum is taken) or "
        f"'auto' / 'auto:<factor>' with a positive factor, got {show(value)}"
    )


MixedSel = Annotated[list[int] | str, BeforeValidator(_check_mixed_sel)]


class AttentionConfig(DescriptorConfig):
    """Keys shared by the attention descriptors ``se_atten`` and ``se_atten_v2`` (DPA-1, spec 3.9): one block of
    neighbor slots of any type, a type embedding, attention layers over the neighbors."""

    ALIASES: ClassVar[dict[str, str]] = {"n_axis_neuron": "axis_neuron"}

    sel: MixedSel = "auto"
    """Maximum number of neighbors of any type within ``rcut`` (an integer; a per-type list counts by its sum),
    or "auto" / "auto:<factor>" to derive it from the largest neighbor count in the data."""
    axis_neuron: int = Field(4, gt=0)
    """Number of columns of the embedding matrix used as the axis (sub-matrix) size."""
    type_one_side: bool = False
    """Embed only the neighbor's type (True) or the neighbor's and the center's types (False)."""
    attn: int = Field(128, gt=0)
    """Width of the query, key and value vectors of the attention layers."""
    attn_layer: int = Field(2, ge=0)
    """Number of attention layers (0: none)."""
    attn_dotr: bool = True
    """Multiply the attention weights by the dot products of the neighbors' unit direction vectors."""
    attn_mask: bool = False
    """Mask the diagonal of the attention matrix; DeePMD-kit 3.2 does not implement true, neither does deeppot."""
    tebd_dim: int = Field(8, gt=0)
    """Length of the type embedding vectors."""
    scaling_factor: float = Field(1.0, gt=0)
    """Attention logits are scaled by (attn * scaling_factor)^-1/2 when ``temperature`` is not given."""
    normalize: bool = True
    """L2-normalise the query, key and value vectors."""
    temperature: float | None = None
    """If given, the factor on the attention logits instead of (attn * scaling_factor)^-1/2."""
    concat_output_tebd: bool = True
    """Append the center's type embedding to the descriptor (the fitting net's input)."""
    trainable_ln: bool = True
    """Train the scale and shift of the attention layers' layer normalisation."""
    ln_eps: float | None = Field(None, gt=0)
    """Epsilon of the layer normalisation; ``null`` means 1e-5 (DeePMD-kit's PyTorch value)."""
    use_econf_tebd: bool = False
    """Start the type embedding from electronic configurations; not supported by deeppot (keep false)."""
    use_tebd_bias: bool = False
    """Use a bias in the type embedding layer."""
    type_map: list[str] | None = None
    """Element names of the descriptor's types (informational; the model's type_map is what counts)."""

    @model_validator(mode="after")
    def _check_unsupported(self) -> AttentionConfig:
        found: list[tuple[Path, str]] = []
        if self.attn_mask:
            found.append((("attn_mask",), "true is not implemented (nor by DeePMD-kit 3.2); set it to false"))
        if self.use_econf_tebd:
            found.append((("use_econf_tebd",), "electronic-configuration type embedding is not supported; "
                                               "set it to false"))
        if found:
            raise SectionProblems(found)
        return self

    def neighbor_counts(self, stat: NeighborStat) -> list[int]:
        """[the largest number of neighbors of any type within rcut around one atom] (DeePMD-kit's mixed-type
        neighbor statistics)."""
        return [int(count) for count in stat(self.rcut, mixed_types=True)]

    def type_problems(self, ntypes: int) -> list[tuple[Path, str]]:
        """sel holds one number whatever the number of types; only exclude_types is checked."""
        return type_index_problems(self.exclude_types, ntypes, ("exclude_types",))


class SeAttenConfig(AttentionConfig):
    """Attention descriptor DPA-1 (``se_atten``, alias ``dpa1``)."""

    ALIASES: ClassVar[dict[str, str]] = {
        "n_axis_neuron": "axis_neuron", "smooth_type_embdding": "smooth_type_embedding"
    }

    type: Literal["se_atten"] = "se_atten"
    """Descriptor type."""
    tebd_input_mode: Literal["concat", "strip"] = "concat"
    """How the type embedding enters: appended to the embedding net's input ("concat"), or through a separate
    net whose output multiplies the radial embedding ("strip")."""
    smooth_type_embedding: bool = False
    """Smooth attention (logits and weights gated by the switch function) and, in "strip" mode, the type
    branch multiplied by the switch: the model is then smooth at rcut."""
    stripped_type_embedding: bool | None = Field(None, exclude=True)
    """Deprecated: true means tebd_input_mode "strip", false "concat"; ``null`` leaves tebd_input_mode."""
    set_davg_zero: bool = True
    """Set the mean of the environment-matrix statistics to zero."""

    @model_validator(mode="after")
    def _apply_stripped(self) -> SeAttenConfig:
        if self.stripped_type_embedding is not None:
            self.tebd_input_mode = "strip" if self.stripped_type_embedding else "concat"
        return self


class SeAttenV2Config(AttentionConfig):
    """Attention descriptor ``se_atten_v2``: se_atten with tebd_input_mode "strip" and smooth_type_embedding."""

    type: Literal["se_atten_v2"] = "se_atten_v2"
    """Descriptor type."""
    set_davg_zero: bool = False
    """Set the mean of the environment-matrix statistics to zero."""


MemberSections = SeE2AConfig | SeE2RConfig | SeE3Config | SeAttenConfig | SeAttenV2Config
"""The descriptor sections that can stand alone or be a member of a hybrid (type-blocked and mixed-type ones)."""


def _check_members(value: Any) -> Any:
    if isinstance(value, list) and not value:
        raise ValueError("is empty; list at least one descriptor, e.g. [{\"type\": \"se_e2_a\", ...}]")
    return value


class HybridConfig(Section):
    """A list of descriptors, each with its own rcut and sel, their outputs concatenated in list order
    (``hybrid``). One neighbor search at the largest rcut serves all of them."""

    TAKES_TYPE_EMBEDDING: ClassVar[bool] = False

    type: Literal["hybrid"] = "hybrid"
    """Descriptor type."""
    list: Annotated[
        builtins.list[Annotated[MemberSections, Field(discriminator="type")]], BeforeValidator(_check_members)
    ]
    """The member descriptors (any type but hybrid), each a full descriptor section."""

    def resolve_sel(self, stat: NeighborStat, previous: Optional[dict] = None) -> HybridConfig:
        """Each member resolved at its own rcut (:meth:`DescriptorConfig.resolve_sel`); a member's "auto" takes
        the sel of ``previous``'s member at the same place when ``previous`` is a hybrid of as many members."""
        members = previous.get("list") if previous is not None and previous.get("type") == "hybrid" else None
        if not isinstance(members, builtins.list) or len(members) != len(self.list):
            members = [None] * len(self.list)
        return self.model_copy(update={"list": [m.resolve_sel(stat, p) for m, p in zip(self.list, members)]})

    def leaf_sections(self, path: Path = ("descriptor",)) -> builtins.list[tuple[Path, DescriptorConfig]]:
        """(path, section) of each member."""
        return [leaf for i, member in enumerate(self.list) for leaf in member.leaf_sections(path + ("list", i))]

    def type_problems(self, ntypes: int) -> builtins.list[tuple[Path, str]]:
        return [(("list", i) + rel, message) for i, member in enumerate(self.list)
                for rel, message in member.type_problems(ntypes)]


DESCRIPTORS = TypeRegistry(
    what="descriptor",
    classes={"se_e2_a": SeE2AConfig, "se_e2_r": SeE2RConfig, "se_e3": SeE3Config, "hybrid": HybridConfig,
             "se_a_mask": SeAMaskConfig, "loc_frame": LocFrameConfig, "se_atten": SeAttenConfig,
             "se_atten_v2": SeAttenV2Config},
    aliases={"se_a": "se_e2_a", "se_r": "se_e2_r", "se_at": "se_e3", "se_a_3be": "se_e3", "se_t": "se_e3",
             "dpa1": "se_atten"},
    unsupported=(
        "se_e3_tebd",
        "dpa2", "dpa3", "se_a_tpe", "se_a_ebd", "se_a_ebd_v2",
    ),
)
"""Descriptor types accepted in ``model/descriptor/type`` (and, but for hybrid, in a hybrid's ``list``)."""
HybridConfig.VARIANTS = {
    "list": TypeRegistry(
        what="descriptor",
        classes={name: cls for name, cls in DESCRIPTORS.classes.items() if cls not in (HybridConfig, SeAMaskConfig,
                                                                                      LocFrameConfig)},
        aliases=DESCRIPTORS.aliases,
        unsupported=DESCRIPTORS.unsupported,
        refused={"hybrid": "a hybrid descriptor cannot hold another hybrid; list its members here directly",
                 "se_a_mask": "se_a_mask (no cut-off, aparam mask) cannot be a hybrid member; use it alone",
                 "loc_frame": "loc_frame cannot be a hybrid member; use it alone"},
    )
}


class TypeEmbeddingConfig(Section):
    """The model-level type embedding (``model/type_embedding``, DeePMD-kit's TF semantics, with se_e2_a): a net
    maps the one-hot type to a vector; one embedding net serves every (center, neighbor) type pair with the type
    vectors appended to its input, and one fitting net serves every type with the center's vector appended."""

    neuron: LayerSizes = [8]
    """Widths of the type-embedding network layers; the last is the type vector's length."""
    activation_function: Activation = "tanh"
    """Activation function of the type-embedding network."""
    resnet_dt: bool = False
    """Use a trainable timestep in the type-embedding network's ResNet connections."""
    precision: Precision = "default"
    """Precision of the type-embedding network ("default" means float64)."""
    trainable: bool = True
    """Whether the type-embedding parameters are trained."""
    seed: int | None = None
    """Random seed for parameter initialization; ``None`` draws one."""
    use_econf_tebd: bool = False
    """Start from the elements' electronic configurations instead of one-hot types (not supported yet)."""
    use_tebd_bias: bool = False
    """Use a bias in the type-embedding layers."""

    @property
    def resolved_precision(self) -> str:
        """Concrete dtype name of the network ("default" becomes "float64")."""
        return resolve_precision(self.precision)


def _check_trainable(value: Any) -> Any:
    if isinstance(value, bool) or (isinstance(value, list) and all(isinstance(v, bool) for v in value)):
        return value
    raise ValueError(f"expected true/false or a list of true/false (one per layer), got {show(value)}")


class FittingConfig(Section):
    """Keys every fitting network type shares (DeePMD-kit 3.2 names and defaults)."""

    ALIASES: ClassVar[dict[str, str]] = {"n_neuron": "neuron"}

    numb_fparam: int = Field(0, ge=0)
    """Number of frame parameters (``fparam.npy``) fed to the network."""
    numb_aparam: int = Field(0, ge=0)
    """Number of atomic parameters (``aparam.npy``) fed to the network."""
    default_fparam: list[float] | None = None
    """Frame parameters used when a system has no ``fparam.npy``."""
    dim_case_embd: int = Field(0, ge=0)
    """Dimension of the case embedding (multi-task); 0 disables it."""
    neuron: LayerSizes = [120, 120, 120]
    """Widths of the hidden layers."""
    activation_function: Activation = "tanh"
    """Activation function of the hidden layers."""
    precision: Precision = "default"
    """Precision of the network ("default" means float64)."""
    resnet_dt: bool = True
    """Use a trainable timestep in the ResNet connections."""
    seed: int | None = None
    """Random seed for parameter initialization; ``None`` draws one."""

    @property
    def resolved_precision(self) -> str:
        """Concrete dtype name of the network ("default" becomes "float64")."""
        return resolve_precision(self.precision)


class EnerFittingConfig(FittingConfig):
    """Energy fitting network (``type`` "ener"): maps descriptors to atomic energies in eV."""

    type: Literal["ener"] = "ener"
    """Fitting type."""
    trainable: Annotated[bool | list[bool], BeforeValidator(_check_trainable)] = True
    """Whether the parameters are trained: one flag, or one per layer including the output layer."""
    rcond: float | None = None
    """Cut-off ratio for small singular values when fitting the energy bias by least squares."""
    atom_ener: list[float | None] = []
    """Energy (eV) of an isolated atom of each type; ``null`` leaves that type free."""
    use_aparam_as_mask: bool = False
    """Use the atomic parameters only as a mask, not as network input."""

    @model_validator(mode="after")
    def _check_trainable_length(self) -> EnerFittingConfig:
        if isinstance(self.trainable, list) and len(self.trainable) != len(self.neuron) + 1:
            raise SectionProblems(
                [
                    (
                        ("trainable",),
                        f"has {len(self.trainable)} entries but the network has {len(self.neuron)} hidden "
                        f"layers plus the output layer; give {len(self.neuron) + 1}",
                    )
                ]
            )
        return self


def _check_sel_type(value: Any) -> Any:
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value if value is None else [value]
    if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        return value
    raise ValueError(f"expected a type index or a list of type indices, got {show(value)}")


class TensorFittingConfig(FittingConfig):
    """Keys of the tensor fittings ``dipole`` and ``polar``."""

    sel_type: Annotated[list[int] | None, BeforeValidator(_check_sel_type)] = None
    """Types whose atoms carry the tensor (DeePMD-kit's TensorFlow key); the other types go to
    model/atom_exclude_types, which is how DeePMD-kit 3.2's PyTorch backend selects them. ``null``: all types."""


class DipoleFittingConfig(TensorFittingConfig):
    """Dipole fitting (``type`` "dipole"): an atomic vector rotated with the descriptor's rotation matrix."""

    ALIASES: ClassVar[dict[str, str]] = {"n_neuron": "neuron", "dipole_type": "sel_type"}

    type: Literal["dipole"] = "dipole"
    """Fitting type."""


class PolarFittingConfig(TensorFittingConfig):
    """Polarizability fitting (``type`` "polar"): an atomic 3 x 3 tensor R^T diag(o) R (or R^T o R)."""

    ALIASES: ClassVar[dict[str, str]] = {"n_neuron": "neuron", "pol_type": "sel_type"}

    type: Literal["polar"] = "polar"
    """Fitting type."""
    fit_diag: bool = True
    """Fit the diagonal of the polarizability in the local frame (M1 numbers) instead of a full M1 x M1 matrix."""
    scale: float | list[float] = 1.0
    """Factor on the network output: one number, or one per type."""
    shift_diag: bool = True
    """Add the per-type mean of the diagonal of the labels (from the data statistics) to the diagonal."""


FITTINGS = TypeRegistry(
    what="fitting_net",
    classes={"ener": EnerFittingConfig, "dipole": DipoleFittingConfig, "polar": PolarFittingConfig},
    default="ener",
    unsupported=("dos", "property"),
)
"""Fitting types accepted in ``model/fitting_net/type``."""


def _check_type_map(value: list[str]) -> list[str]:
    if not value:
        raise ValueError('is empty; list the element names, e.g. ["O", "H"]')
    seen: set[str] = set()
    for name in value:
        if name in seen:
            raise ValueError(f"lists '{name}' twice; each type name must be unique")
        seen.add(name)
    return value


class ModelConfig(Section):
    """The ``model`` section: a standard descriptor + fitting-network energy model."""

    VARIANTS: ClassVar[dict[str, TypeRegistry]] = {"descriptor": DESCRIPTORS, "fitting_net": FITTINGS,
                                                  "modifier": MODIFIERS}

    type: Literal["standard"] = "standard"
    """Model type; only "standard" is supported."""
    type_map: list[str]
    """Element name of each atom type; type index i in the data is ``type_map[i]``."""
    descriptor: Annotated[
        MemberSections | HybridConfig | SeAMaskConfig | LocFrameConfig, Field(discriminator="type"),
    ]
    """The descriptor of the local atomic environment."""
    type_embedding: TypeEmbeddingConfig | None = None
    """Type embedding shared by all elements (with descriptor se_e2_a); ``None``: per-type networks."""
    fitting_net: Annotated[
        EnerFittingConfig | DipoleFittingConfig | PolarFittingConfig, Field(discriminator="type")
    ]
    """The network mapping descriptors to atomic energies, dipoles or polarizabilities."""
    data_stat_nbatch: int = Field(10, gt=0)
    """Number of batches per system used to compute the descriptor statistics."""
    data_stat_protect: float = Field(0.01, gt=0)
    """Lower bound applied to standard deviations in the statistics."""
    data_bias_nsample: int = Field(10, gt=0)
    """Number of samples used to recompute the output bias when fine-tuning."""
    pair_exclude_types: TypePairs = []
    """Pairs of type indices whose interactions are excluded from the whole model."""
    atom_exclude_types: list[Annotated[int, Field(ge=0)]] = []
    """Type indices whose atomic contributions are excluded."""
    preset_out_bias: dict[str, list[float | None]] | None = None
    """Fixed output bias per type, e.g. {"energy": [null, 0.0]}; ``null`` entries are fitted."""
    modifier: DipoleChargeModifierConfig | None = None
    """A term outside the fitted model, removed from the labels in training and added back in evaluation (DPLR)."""
    use_srtab: str | None = None
    """Pair table file (r, then one energy column per type pair: 0-0, 0-1, ..., 1-1, ...) blended with the DP
    energy at short range (DeePMD-kit's DP/ZBL model); relative to input.json's folder."""
    smin_alpha: float | None = Field(None, gt=0)
    """Decay length (Angstrom) of the soft-min nearest-neighbor distance that switches the table in; ``None``: 0.1."""
    sw_rmin: float | None = None
    """Soft-min distance (Angstrom) below which the energy is the table's alone; required with use_srtab."""
    sw_rmax: float | None = None
    """Soft-min distance (Angstrom) above which the energy is the DP model's alone; required with use_srtab."""
    srtab_add_bias: bool = True
    """Add the output bias to the table energy too (DeePMD-kit TF's key); deeppot, as DeePMD-kit 3.2's PyTorch
    backend, adds one bias to the blended energy, which equals ``true``."""

    @field_validator("type_map")
    @classmethod
    def _validate_type_map(cls, value: list[str]) -> list[str]:
        return _check_type_map(value)

    @model_validator(mode="after")
    def _check_against_type_map(self) -> ModelConfig:
        ntypes = len(self.type_map)
        found: list[tuple[Path, str]] = [
            (("descriptor",) + rel, message) for rel, message in self.descriptor.type_problems(ntypes)
        ]
        if self.type_embedding is not None and not self.descriptor.TAKES_TYPE_EMBEDDING:
            found.append((("type_embedding",), f"is used with descriptor se_e2_a only, not with "
                          f"'{self.descriptor.type}'; remove model/type_embedding or use se_e2_a"))
        if self.type_embedding is not None and self.type_embedding.use_econf_tebd:
            found.append((("type_embedding", "use_econf_tebd"), "is not supported by deeppot yet; set it to false"))
        found += type_index_problems(self.pair_exclude_types, ntypes, ("pair_exclude_types",))
        found += type_index_problems(self.atom_exclude_types, ntypes, ("atom_exclude_types",))
        found += self._tensor_fitting_problems()
        found += self._aparam_mask_problems()
        found += self._srtab_problems()
        if len(getattr(self.fitting_net, "atom_ener", [])) > ntypes:
            found.append(
                (
                    ("fitting_net", "atom_ener"),
                    f"has {len(self.fitting_net.atom_ener)} entries but model/type_map has {ntypes} types; "
                    "give at most one per type",
                )
            )
        if found:
            raise SectionProblems(found)
        return self

    def _srtab_problems(self) -> list[tuple[Path, str]]:
        """The DP/ZBL keys (use_srtab, smin_alpha, sw_rmin, sw_rmax, srtab_add_bias) complete and consistent."""
        keys = ("smin_alpha", "sw_rmin", "sw_rmax", "srtab_add_bias")
        if self.use_srtab is None:
            return [((key,), "only acts with model/use_srtab (the pair table file); remove it or give use_srtab")
                    for key in keys if getattr(self, key) != type(self).model_fields[key].default]
        found: list[tuple[Path, str]] = [((key,), "is required with model/use_srtab; give the distance in Angstrom")
                                         for key in ("sw_rmin", "sw_rmax") if getattr(self, key) is None]
        if not found and self.sw_rmin >= self.sw_rmax:
            found.append((("sw_rmax",), f"({self.sw_rmax}) must be larger than sw_rmin ({self.sw_rmin})"))
        if not self.srtab_add_bias:
            found.append((("srtab_add_bias",), "false is not supported: deeppot adds one output bias to the blended "
                          "energy (DeePMD-kit 3.2's PyTorch DP/ZBL model), which is TF's true; remove it"))
        if self.fitting_net.type != "ener" or self.descriptor.type == "se_a_mask":
            found.append((("use_srtab",), "needs an energy fitting and a descriptor with a cut-off (not "
                          f"{self.fitting_net.type} / {self.descriptor.type}); remove use_srtab"))
        if self.smin_alpha is None:
            self.smin_alpha = 0.1
        return found

    def _aparam_mask_problems(self) -> list[tuple[Path, str]]:
        """se_a_mask reads its real/virtual mask from aparam: it needs an energy fitting with numb_aparam 1 and
        use_aparam_as_mask; use_aparam_as_mask reads one aparam column."""
        fitting = self.fitting_net
        as_mask = getattr(fitting, "use_aparam_as_mask", False)
        if self.descriptor.type == "se_a_mask" and not (as_mask and fitting.numb_aparam == 1):
            return [(("fitting_net",), "descriptor se_a_mask takes its real/virtual atom mask from aparam.npy: set "
                     "fitting_net/numb_aparam to 1 and fitting_net/use_aparam_as_mask to true (an energy fitting)")]
        if as_mask and fitting.numb_aparam != 1:
            return [(("fitting_net", "numb_aparam"), f"is {fitting.numb_aparam}, but use_aparam_as_mask reads the "
                     "real/virtual atom mask from one aparam column; set numb_aparam to 1")]
        return []

    def _tensor_fitting_problems(self) -> list[tuple[Path, str]]:
        """sel_type in range and consistent with atom_exclude_types, which it sets (DeePMD-kit 3.2's relation:
        the selected types are those not excluded); a per-type scale of the right length."""
        fitting, ntypes = self.fitting_net, len(self.type_map)
        found: list[tuple[Path, str]] = []
        if isinstance(getattr(fitting, "scale", None), list) and len(fitting.scale) != ntypes:
            found.append((("fitting_net", "scale"), f"has {len(fitting.scale)} entries but model/type_map has "
                          f"{ntypes} types; give one per type or one number"))
        sel_type = getattr(fitting, "sel_type", None)
        if sel_type is None:
            return found
        bad = type_index_problems(sel_type, ntypes, ("fitting_net", "sel_type"))
        if bad:
            return found + bad
        excluded = [t for t in range(ntypes) if t not in sel_type]
        if "atom_exclude_types" in self.model_fields_set and sorted(self.atom_exclude_types) != excluded:
            found.append((("atom_exclude_types",), f"{self.atom_exclude_types} contradicts fitting_net/sel_type "
                          f"{sel_type} (the selected types are those not excluded); give only one of them"))
        else:
            self.atom_exclude_types = excluded
        return found

    @property
    def ntypes(self) -> int:
        """Number of atom types."""
        return len(self.type_map)

    def resolve_sel(self, stat: NeighborStat, previous: Optional[dict] = None) -> ModelConfig:
        """This section with every "auto" sel replaced by numbers (see the module docstring): from ``previous``
        (a checkpoint's resolved model section) where it has them, else from the neighbor statistics ``stat``."""
        previous_descriptor = previous.get("descriptor") if previous is not None else None
        return self.model_copy(update={"descriptor": self.descriptor.resolve_sel(stat, previous_descriptor)})
