"""ISO 4217 currencies and their minor units: which codes a contract may name, and how many
decimal places an amount in each may have.

The table is ISO 4217 list one (current currency and funds codes, as amended to 2024),
without the codes whose minor unit is "N.A." (precious metals, SDR, testing codes, XXX): a
payment is made in a currency that has a smallest unit. Update it when ISO 4217 changes.
"""

from __future__ import annotations

from decimal import Decimal

_ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE = "BHD IQD JOD KWD LYD OMR TND"
_FOUR = "CLF UYW"
_TWO = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP "
    "BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD "
    "FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD "
    "KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD "
    "NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP "
    "SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED "
    "VES WST XCD XCG YER ZAR ZMW ZWG"
)
#: Decimal places of the minor unit, by ISO 4217 alphabetic code.
MINOR_UNITS: dict[str, int] = {
    code: places
    for codes, places in ((_ZERO, 0), (_TWO, 2), (_THREE, 3), (_FOUR, 4))
    for code in codes.split()
}


def minor_units(currency: str) -> int:
    """Decimal places of ``currency``; ValueError naming the code when ISO 4217 has no such one."""
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise ValueError(f"{currency!r} is not an ISO 4217 currency code") from None


def decimal_places(amount: Decimal) -> int:
    """Digits written after the decimal point (``12.50`` has 2, ``100`` has 0)."""
    exponent = amount.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0
