"""Descriptors, registered by DeePMD-kit type name."""

from deeppot.descriptor.se_e2_a import DescriptorSeA

DESCRIPTORS = {"se_e2_a": DescriptorSeA}

__all__ = ["DESCRIPTORS", "DescriptorSeA"]
