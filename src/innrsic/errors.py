"""The error types innrsic raises. Every failure a user can cause is one of these."""


class InnrsicError(Exception):
    """Base class: the CLI reports these as a one-line message and a non-zero exit."""


class ImageReadError(InnrsicError):
    """An image file is missing, unreadable, or in a mode innrsic does not accept."""


class CodecSpecError(InnrsicError):
    """A codec spec string names an unknown codec or parameter, or a bad value."""


class CodecError(InnrsicError):
    """A codec failed to encode or decode (corrupt payload, unreachable target rate...)."""


class RateTargetError(CodecError):
    """A target bitrate is below the smallest rate the codec can produce for this image."""


class ContainerError(InnrsicError):
    """A `.rsic` file is malformed. Subclasses name the exact defect."""


class BadMagicError(ContainerError):
    """The file does not start with the `.rsic` magic bytes."""


class UnsupportedVersionError(ContainerError):
    """The file's format version is newer (or older) than this reader understands."""


class TruncatedError(ContainerError):
    """The file ends before the sizes declared in its header say it should."""


class TrailingDataError(ContainerError):
    """The file has bytes after its checksum."""


class ChecksumError(ContainerError):
    """The stored checksum does not match the header and payload."""


class HeaderError(ContainerError):
    """A header field holds an impossible or disallowed value (size limits, bad text)."""


class RasterFormatError(InnrsicError):
    """A raster's bands, sample type or nodata need a mapping innrsic was not given."""


class TilingError(InnrsicError, ValueError):
    """A tile size, region or grid that cannot be used (bad numbers, outside the image)."""


class MetricError(InnrsicError):
    """A metric cannot be computed for the given images (shape mismatch, too small)."""


class ConfigError(InnrsicError):
    """A configuration file or override is invalid."""


class WeightsError(InnrsicError):
    """Model weights are missing, unsafe or do not match the expected layout."""


class ReconstructionMismatch(CodecError):
    """A decoded tile differs from the reconstruction checksum its encoder stored: this
    platform's floating point (or codec library) decodes differently from the encoder's."""


class UnsupportedPrecision(ConfigError):
    """A numeric precision this CPU cannot run (bfloat16 convolutions without the CPU features)."""


class UsageError(InnrsicError):
    """The command line asks for something that cannot be done (exit 2 before any work)."""
