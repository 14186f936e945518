"""Document type codes (DESIGN.md): stable API values, defined once."""

from __future__ import annotations

DOC_TYPES: tuple[str, ...] = (
    "birth_certificate",
    "citizen_id",
    "marriage_certificate",
    "death_certificate",
    "residence_confirmation",
    "land_use_certificate",
    "diploma",
    "decision",
    "official_letter",
    "business_registration",
    "other",
)
