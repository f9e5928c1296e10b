"""Descriptors, registered by DeePMD-kit type name (aliases and did-you-mean shared with the config layer).

Adding a descriptor: one module here with a :class:`Descriptor` subclass, its entry in ``DESCRIPTORS`` and its
config section in :mod:`deeppot.config.model` (same canonical name, same aliases).
"""

from typing import Type

from deeppot.config.base import TypeRegistry
from deeppot.config.model import DESCRIPTORS as DESCRIPTOR_CONFIGS
from deeppot.descriptor.base import Descriptor
from deeppot.descriptor.hybrid import DescriptorHybrid
from deeppot.descriptor.loc_frame import DescriptorLocFrame
from deeppot.descriptor.se_a_mask import DescriptorSeAMask
from deeppot.descriptor.se_atten import DescriptorSeAtten, DescriptorSeAttenV2
from deeppot.descriptor.se_e2_a import DescriptorSeA
from deeppot.descriptor.se_e2_r import DescriptorSeR
from deeppot.descriptor.se_e3 import DescriptorSeT

DESCRIPTORS = TypeRegistry(
    what="descriptor",
    classes={cls.type_name: cls for cls in (DescriptorSeA, DescriptorSeR, DescriptorSeT, DescriptorHybrid,
                                            DescriptorSeAMask, DescriptorLocFrame, DescriptorSeAtten,
                                            DescriptorSeAttenV2)},
    aliases=DESCRIPTOR_CONFIGS.aliases,
    unsupported=DESCRIPTOR_CONFIGS.unsupported,
)
"""Canonical DeePMD-kit type name -> descriptor class."""


def descriptor_class(name: str) -> Type[Descriptor]:
    """The class of descriptor type ``name`` (canonical or alias); ValueError with a did-you-mean otherwise."""
    return DESCRIPTORS.resolve(name)[1]


def deserialize_descriptor(data: dict) -> Descriptor:
    """A descriptor from DeePMD-kit's serialized dict (its ``type`` picks the class)."""
    return descriptor_class(data.get("type")).deserialize(data)


__all__ = ["DESCRIPTORS", "Descriptor", "DescriptorHybrid", "DescriptorLocFrame", "DescriptorSeA", "DescriptorSeAMask", "DescriptorSeAtten", "DescriptorSeAttenV2", "DescriptorSeR", "DescriptorSeT", "descriptor_class",
           "deserialize_descriptor"]
