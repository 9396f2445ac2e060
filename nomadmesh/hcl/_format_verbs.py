"""cty's `format` function (function/stdlib/format.go, format_fsm.rl): Go's fmt verbs on cty
values, numbers printed as Go prints a 512-bit big.Float or a big.Int."""

from __future__ import annotations

import decimal
from fractions import Fraction
from typing import Any

from nomadmesh.hcl._values import BOOL, NUMBER, STRING, ConversionError, convert, format_number, is_number

_FLAGS = " +-#0"
_CTX = decimal.Context(prec=1200, rounding=decimal.ROUND_HALF_EVEN)


class FormatError(Exception):
    """A format failure; `arg` is the index of the argument at fault (cty ArgError) or None."""

    def __init__(self, message: str, arg: int | None = None) -> None:
        super().__init__(message)
        self.arg = arg


class _Verb:
    __slots__ = ("arg", "flags", "mode", "offset", "prec", "raw", "width")

    def __init__(self) -> None:
        self.flags = ""
        self.width: int | None = None
        self.prec: int | None = None
        self.arg = 0
        self.mode = ""
        self.raw = ""
        self.offset = 0


def format_values(fmt: str, args: list[Any]) -> str:
    """format(fmt, args...)."""
    out: list[str] = []
    i = 0
    n = len(fmt)
    next_arg = 1
    highest = 0
    while i < n:
        ch = fmt[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        if i + 1 < n and fmt[i + 1] == "%":
            out.append("%")
            i += 2
            continue
        verb = _Verb()
        verb.offset = i
        verb.arg = next_arg
        j = i + 1
        while j < n and fmt[j] in _FLAGS:
            verb.flags += fmt[j]
            j += 1
        if j < n and fmt[j] in "123456789":
            k = j
            while k < n and fmt[k].isdigit():
                k += 1
            verb.width = int(fmt[j:k])
            j = k
        if j < n and fmt[j] == ".":
            k = j + 1
            while k < n and fmt[k].isdigit():
                k += 1
            verb.prec = int(fmt[j + 1 : k] or "0")
            j = k
        if j < n and fmt[j] == "[":
            k = j + 1
            if k < n and fmt[k] in "123456789":
                while k < n and fmt[k].isdigit():
                    k += 1
                if k < n and fmt[k] == "]":
                    verb.arg = int(fmt[j + 1 : k])
                    j = k + 1
                else:
                    _bad_char(fmt, k)
            else:
                _bad_char(fmt, k)
        if j >= n:
            raise FormatError(f"invalid format string starting at offset {_offset(fmt, n)}")
        if not (fmt[j].isascii() and fmt[j].isalpha()):
            _bad_char(fmt, j)
        verb.mode = fmt[j]
        verb.raw = fmt[i : j + 1]
        highest = max(highest, verb.arg)
        out.append(_append(verb, args))
        next_arg = verb.arg + 1
        i = j + 1
    if highest < len(args):
        if highest == 0:
            raise FormatError("too many arguments; no verbs in format string", highest)
        raise FormatError(f"too many arguments; only {highest} used by format string", highest)
    return "".join(out)


def _bad_char(fmt: str, at: int) -> None:
    if at >= len(fmt):
        raise FormatError(f"invalid format string starting at offset {_offset(fmt, len(fmt))}")
    raise FormatError(f"unrecognized format character {_rune(fmt[at])} at offset {_offset(fmt, at)}")


def _offset(fmt: str, at: int) -> int:
    """cty's format scanner (go-cty stdlib/format_fsm.rl) counts offsets in UTF-8 bytes."""
    return len(fmt[:at].encode("utf-8", "surrogatepass"))


def _rune(ch: str) -> str:
    if ch == "'":
        return "'\\''"
    return f"'{ch}'"


def _q(text: str) -> str:
    from nomadmesh.hcl._diag import go_quote

    return go_quote(text)


def _append(verb: _Verb, args: list[Any]) -> str:
    idx = verb.arg - 1
    if idx >= len(args):
        raise FormatError(
            f"not enough arguments for {_q(verb.raw)} at {verb.offset}: need index {verb.arg} but "
            f"have {len(args)} total"
        )
    arg = args[idx]
    mode = verb.mode
    if mode != "v" and arg is None:
        raise FormatError(
            f"unsupported value for {_q(verb.raw)} at {verb.offset}: null value cannot be formatted"
        )
    if mode == "v":
        if "#" not in verb.flags and arg is not None:
            if type(arg) is str:
                return _pad(verb, arg)
            if is_number(arg):
                return _pad(verb, _float_text(arg, "g", None))
        from nomadmesh.hcl._functions import json_encode

        return _pad(verb, json_encode(arg))
    if mode == "t":
        try:
            value = convert(arg, BOOL)
        except ConversionError as exc:
            raise FormatError(f"unsupported value for {_q(verb.raw)} at {verb.offset}: {exc}") from None
        return _pad(verb, "true" if value else "false")
    if mode in "bdoxXeEfgG":
        try:
            num = convert(arg, NUMBER)
        except ConversionError as exc:
            raise FormatError(f"unsupported value for {_q(verb.raw)} at {verb.offset}: {exc}") from None
        if mode in "bdoxX":
            if type(num) is not int:
                raise FormatError(
                    f"unsupported value for {_q(verb.raw)} at {verb.offset}: an integer is required"
                )
            return _integer(verb, num)
        return _float(verb, num)
    if mode in "sq":
        try:
            text = convert(arg, STRING)
        except ConversionError as exc:
            raise FormatError(f"unsupported value for {_q(verb.raw)} at {verb.offset}: {exc}") from None
        if verb.prec:
            text = text[: verb.prec]
        if mode == "q":
            from nomadmesh.hcl._functions import go_json_string

            text = go_json_string(text)
        return _pad(verb, text)
    raise FormatError(f"unsupported format verb {_rune(mode)} in {_q(verb.raw)} at offset {verb.offset}")


def _pad(verb: _Verb, text: str, *, numeric: bool = False) -> str:
    width = verb.width
    if width is None or len(text) >= width:
        return text
    if "-" in verb.flags:
        return text + " " * (width - len(text))
    if numeric and "0" in verb.flags:
        sign = text[0] if text[:1] in "+- " else ""
        body = text[len(sign) :]
        return sign + "0" * (width - len(text)) + body
    return " " * (width - len(text)) + text


def _integer(verb: _Verb, n: int) -> str:
    """Go's fmt of a *big.Int."""
    mode = verb.mode
    digits = {
        "d": str(abs(n)),
        "b": format(abs(n), "b"),
        "o": format(abs(n), "o"),
        "x": format(abs(n), "x"),
        "X": format(abs(n), "X"),
    }[mode]
    if verb.prec is not None:
        digits = "" if verb.prec == 0 and n == 0 else digits.rjust(verb.prec, "0")
    prefix = ""
    if "#" in verb.flags:
        prefix = {"b": "0b", "o": "0", "x": "0x", "X": "0X"}.get(mode, "")
    sign = "-" if n < 0 else ("+" if "+" in verb.flags else (" " if " " in verb.flags else ""))
    text = sign + prefix + digits
    return _pad(verb, text, numeric=verb.prec is None)


def _float(verb: _Verb, num: Any) -> str:
    """Go's fmt of a *big.Float (big/ftoa.go Format)."""
    mode = verb.mode
    if type(num) is float:
        text = "+Inf" if num > 0 else "-Inf"
        if num > 0 and "+" not in verb.flags:
            text = "Inf" if " " not in verb.flags else " Inf"
        return _pad(verb, text)
    lower = mode.lower()
    prec = verb.prec
    if lower in ("e", "f") and prec is None:
        prec = 6
    text = _float_text(num, "f" if mode == "F" else lower, prec)
    if mode in "EG":
        text = text.upper()
    if not text.startswith("-"):
        if "+" in verb.flags:
            text = "+" + text
        elif " " in verb.flags:
            text = " " + text
    return _pad(verb, text, numeric=True)


def _exact(num: Any) -> decimal.Decimal:
    """The number's decimal value (non-decimal fractions as their 512-bit binary value)."""
    if type(num) is int:
        return decimal.Decimal(num)
    frac = Fraction(num)
    den = frac.denominator
    while den % 2 == 0:
        den //= 2
    while den % 5 == 0:
        den //= 5
    if den != 1:
        frac = _binary512(frac)
    return _CTX.divide(decimal.Decimal(frac.numerator), decimal.Decimal(frac.denominator))


def _binary512(x: Fraction) -> Fraction:
    sign = -1 if x < 0 else 1
    x = abs(x)
    exp = x.numerator.bit_length() - x.denominator.bit_length()
    shift = 512 - exp
    mant = round(x * (Fraction(2) ** shift))
    if mant.bit_length() > 512:
        shift -= 1
        mant = round(x * (Fraction(2) ** shift))
    return sign * Fraction(mant) / (Fraction(2) ** shift)


def _float_text(num: Any, mode: str, prec: int | None) -> str:
    """%e, %f or %g digits of a number (prec None: the shortest that identifies it)."""
    if prec is None:
        digits_text = format_number(num)  # shortest decimal at 512 bits
        value = decimal.Decimal(digits_text)
    else:
        value = _exact(num)
    neg = value.is_signed() and value != 0
    value = abs(value)
    if mode == "f":
        if prec is None:
            text = _plain(value)
        else:
            step = decimal.Decimal(1).scaleb(-prec)
            text = f"{value.quantize(step, rounding=decimal.ROUND_HALF_EVEN, context=_CTX):f}"
        return ("-" if neg else "") + text
    if mode == "e":
        return ("-" if neg else "") + _e_text(value, prec)
    # %g
    if prec is None:
        digits, dp = _digits(value, None)
        eprec = 6
    else:
        p = prec or 1
        digits, dp = _digits(value, p)
        eprec = p
        if eprec > len(digits) and len(digits) >= dp:
            eprec = len(digits)
    exp = dp - 1
    if exp < -4 or exp >= eprec:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        text = f"{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    elif dp <= 0:
        text = "0." + "0" * (-dp) + digits
    elif dp >= len(digits):
        text = digits + "0" * (dp - len(digits))
    else:
        text = digits[:dp] + "." + digits[dp:]
    return ("-" if neg else "") + text


def _digits(value: decimal.Decimal, sig: int | None) -> tuple[str, int]:
    """Significant digits (trailing zeros dropped) and the decimal point position."""
    if value == 0:
        return "0", 1
    if sig is not None:
        exp = value.adjusted()
        value = value.quantize(
            decimal.Decimal(1).scaleb(exp - sig + 1), rounding=decimal.ROUND_HALF_EVEN, context=_CTX
        )
    sign, digit_tuple, exponent = value.as_tuple()
    del sign
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    dp = len(digit_tuple) + exponent
    return digits, dp


def _e_text(value: decimal.Decimal, prec: int | None) -> str:
    if value == 0:
        digits, exp = "0" * ((prec or 0) + 1), 0
    else:
        exp = value.adjusted()
        if prec is None:
            digits, dp = _digits(value, None)
            exp = dp - 1
        else:
            q = value.quantize(
                decimal.Decimal(1).scaleb(exp - prec), rounding=decimal.ROUND_HALF_EVEN, context=_CTX
            )
            if q.adjusted() != exp:
                exp = q.adjusted()
                q = value.quantize(
                    decimal.Decimal(1).scaleb(exp - prec), rounding=decimal.ROUND_HALF_EVEN, context=_CTX
                )
            digits = "".join(map(str, q.as_tuple()[1])).ljust(prec + 1, "0")[: prec + 1]
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _plain(value: decimal.Decimal) -> str:
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
