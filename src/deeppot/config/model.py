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

NeighborStat = Callable[[float], list[int]]
"""rcut (Angstrom) -> the largest number of neighbors of each type within rcut around any atom of the data."""


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


MemberSections = SeE2AConfig | SeE2RConfig | SeE3Config
"""The descriptor sections that can stand alone or be a member of a hybrid."""


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
    classes={"se_e2_a": SeE2AConfig, "se_e2_r": SeE2RConfig, "se_e3": SeE3Config, "hybrid": HybridConfig},
    aliases={"se_a": "se_e2_a", "se_r": "se_e2_r", "se_at": "se_e3", "se_a_3be": "se_e3", "se_t": "se_e3"},
    unsupported=(
        "se_atten", "dpa1", "se_atten_v2", "se_e3_tebd",
        "dpa2", "dpa3", "loc_frame", "se_a_mask", "se_a_tpe", "se_a_ebd", "se_a_ebd_v2",
    ),
)
"""Descriptor types accepted in ``model/descriptor/type`` (and, but for hybrid, in a hybrid's ``list``)."""
HybridConfig.VARIANTS = {
    "list": TypeRegistry(
        what="descriptor",
        classes={name: cls for name, cls in DESCRIPTORS.classes.items() if cls is not HybridConfig},
        aliases=DESCRIPTORS.aliases,
        unsupported=DESCRIPTORS.unsupported,
        refused={"hybrid": "a hybrid descriptor cannot hold another hybrid; list its members here directly"},
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

    VARIANTS: ClassVar[dict[str, TypeRegistry]] = {"descriptor": DESCRIPTORS, "fitting_net": FITTINGS}

    type: Literal["standard"] = "standard"
    """Model type; only "standard" is supported."""
    type_map: list[str]
    """Element name of each atom type; type index i in the data is ``type_map[i]``."""
    descriptor: Annotated[MemberSections | HybridConfig, Field(discriminator="type")]
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
