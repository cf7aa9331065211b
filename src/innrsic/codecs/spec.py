"""Codec spec strings: ``name`` or ``name:key=value,key=value`` (e.g. ``jpeg2000:bpp=0.1``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from innrsic.errors import CodecSpecError


@dataclass(frozen=True)
class CodecSpec:
    """A parsed spec: the codec name and its raw parameter strings, in the order given."""

    name: str
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> CodecSpec:
        """Parse ``name[:k=v[,k=v...]]``; names are case-insensitive, values are kept verbatim."""
        if not isinstance(text, str) or not text.strip():
            raise CodecSpecError("empty codec spec; expected e.g. 'jpeg2000:bpp=0.1'")
        name, _, rest = text.strip().partition(":")
        name = name.strip().lower()
        if not name:
            raise CodecSpecError(f"codec spec {text!r} has no codec name")
        params: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in rest.split(","))):
            key, sep, value = item.partition("=")
            key = key.strip().lower()
            if not sep or not key or not value.strip():
                raise CodecSpecError(
                    f"codec spec {text!r}: parameter {item!r} is not of the form key=value"
                )
            if key in params:
                raise CodecSpecError(f"codec spec {text!r}: parameter {key!r} given twice")
            params[key] = value.strip()
        return cls(name, params)

    def __str__(self) -> str:
        if not self.params:
            return self.name
        return self.name + ":" + ",".join(f"{k}={v}" for k, v in self.params.items())


@dataclass(frozen=True)
class Param:
    """One parameter a codec accepts: its type, allowed range and a one-line help text."""

    name: str
    kind: Callable[[str], Any]
    help: str
    low: float | None = None
    high: float | None = None

    def convert(self, codec: str, raw: str) -> Any:
        """Turn the raw string into a checked value, or raise CodecSpecError saying why."""
        try:
            value = self.kind(raw)
        except (TypeError, ValueError) as exc:
            kind = getattr(self.kind, "__name__", "value")
            raise CodecSpecError(f"{codec}: {self.name}={raw!r} is not a valid {kind}") from exc
        if isinstance(value, float) and value != value:
            raise CodecSpecError(f"{codec}: {self.name} must be a number, got NaN")
        if (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        ):
            raise CodecSpecError(
                f"{codec}: {self.name}={raw} is out of range [{self.low}, {self.high}]"
            )
        return value


def check_params(
    codec: str, params: Mapping[str, str], accepted: Mapping[str, Param]
) -> dict[str, Any]:
    """Convert `params` with `accepted`; unknown names raise an error listing the valid ones."""
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        valid = ", ".join(f"{p.name} ({p.help})" for p in accepted.values())
        raise CodecSpecError(f"{codec}: unknown parameter(s) {', '.join(unknown)}; valid: {valid}")
    return {key: accepted[key].convert(codec, raw) for key, raw in params.items()}


def canonical_spec(name: str, values: Mapping[str, Any]) -> str:
    """The spec string for checked values; it parses back to the same values."""
    return str(CodecSpec(name, {key: str(value) for key, value in values.items()}))
