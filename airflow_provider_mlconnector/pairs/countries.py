"""Free-text country names (FreshBooks) to ISO 3166-1 alpha-2 codes (BILL, QuickBooks).

pycountry carries the ISO 3166 names, official names and alpha-3 codes; a few everyday names it
does not know are aliased here. Anything still unknown is a mapping error: a vendor record with
a wrong country would be rejected (or worse, misfiled), so we never guess.
"""

from __future__ import annotations

import pycountry

from airflow_provider_mlconnector.exceptions import MappingError

ALIASES = {
    "uk": "GB",
    "great britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "u.s.": "US",
    "u.s.a.": "US",
    "america": "US",
    "russia": "RU",
    "deutschland": "DE",
    "holland": "NL",
}


def iso_country(name: object) -> str:
    """The alpha-2 code for a country name or code; raises ``MappingError`` when unknown."""
    text = str(name or "").strip()
    if not text:
        raise MappingError("vendor address has no country", kind="invalid_country")
    alias = ALIASES.get(text.casefold())
    if alias:
        return alias
    try:
        return str(pycountry.countries.lookup(text).alpha_2)
    except LookupError:
        raise MappingError(
            f"country {text!r} is not a recognisable ISO 3166 country; fix the vendor's address", kind="invalid_country"
        ) from None


def iso_alpha3(name: object) -> str:
    """The alpha-3 code (``USA``) for a country name or code (QuickBooks addresses want alpha-3)."""
    code = iso_country(name)
    country = pycountry.countries.get(alpha_2=code)
    if country is None:  # an alias pycountry does not carry as alpha-2
        raise MappingError(
            f"country {code!r} has no ISO 3166 alpha-3 code; fix the vendor's address", kind="invalid_country"
        )
    return str(country.alpha_3)
