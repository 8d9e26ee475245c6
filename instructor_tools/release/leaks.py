"""The leak check: no text of a solution or answer region may ship.

find_leaks runs before anything is written and again on the written release, over the
text of every shipped file (notebooks: every string of the JSON, base64 payloads decoded;
archives: every member, recursively). Marker lines ship by design and are not region text.

Lines. Texts are compared line by line after ``_normalize`` (whitespace collapsed, comment
and prompt prefixes dropped, blank lines skipped; a string's ``\n`` escapes read as line
breaks). Refused: RUN_LINES consecutive lines of one region (a shorter region: all of it)
anywhere, unless under MIN_RUN_CHARS characters (``)``, ``else:`` prove nothing); any
answer line of at least MIN_ANSWER_LINE_CHARS characters inside any line. A test file
holding a copy of a region leaks it, even if the text occurs elsewhere in the project.

Tokens (solution regions only): a copy renamed, reformatted or joined with ';'. A region's
code is read with tokenize, any text of the release with a regex giving the same tokens
(on Python, token for token; a test checks it), twice: all of it, and with ``#`` comments
blanked. Every name becomes ANY_NAME except keywords, attribute names (``.sum``: the API a
copy must call) and keyword-argument names (``axis=``); numbers compare by value;
operators stay; layout, ``;``, quotes and comment marks are no tokens. Refused:

- WINDOW_TOKENS (K = 32) consecutive tokens of a region's code (about three lines: 24
  already matched an Adam update against batch norm's running averages by chance); a
  region with fewer tokens counts whole if it is decisive;
- a decisive statement alone: a statement of a region, or a comment of it split at ';',
  of at least STATEMENT_TOKENS (M = 12) tokens with at least STATEMENT_OPERATORS (2)
  arithmetic or comparison operators (in a comment, operators for at least
  COMMENT_OPERATOR_SHARE of its tokens): the solution in one line, such as batch norm's
  closed-form ``dx = (gamma * inv_std / N) * (N * dout - dbeta - x_hat * dgamma)``. Calls,
  plumbing and prose, without the operators, would match ordinary lines.

Runs and statements that also occur in the course's given code (the files and cells that
hold regions, less the regions' bodies) are skipped: they prove nothing.

Out of reach: code in images; deliberate obfuscation (a formula rewritten algebraically,
statements reordered or split, code cut across strings); a renamed copy inside the given
code of a file with regions; short statements (under M tokens or two operators) that are
not verbatim.
"""
import base64
import binascii
import bz2
import gzip
import io
import json
import keyword
import lzma
import re
import textwrap
import tokenize
import tarfile
import zipfile
from dataclasses import dataclass, field

from .errors import ReleaseError

# See the module docstring.
RUN_LINES = 3
MIN_RUN_CHARS = 12
MIN_ANSWER_LINE_CHARS = 25
WINDOW_TOKENS = 32  # K: a run of this many tokens of a region's code is a copy of it
STATEMENT_TOKENS = 12  # M: a decisive statement has at least this many tokens...
STATEMENT_OPERATORS = 2  # ...this many arithmetic or comparison operators among them...
COMMENT_OPERATOR_SHARE = 0.3  # ...and, in a comment, operators for this share of them
# Archives inside the release are opened this deep, and at most this much is unpacked.
_MAX_ARCHIVE_DEPTH = 4
_MAX_UNPACKED_BYTES = 512 * 2**20

# ---------------------------------------------------------------------------
# Lines
# ---------------------------------------------------------------------------

# Comment marks and prompts in front of a copied line do not hide it.
_LEADING_MARKS_RE = re.compile(r"^(?:(?:#+|>>>|\.\.\.|>+)\s*)+")


def _normalize(line):
    """A line as the leak check compares it: whitespace collapsed, leading #, >>>, ...
    and > dropped."""
    return _LEADING_MARKS_RE.sub("", " ".join(line.split()))


def _lines(text):
    """The normalized non-blank lines of text."""
    return [n for n in map(_normalize, text.splitlines()) if n]


@dataclass
class _Needles:
    """What counts as leaked: runs of lines, and long answer lines (substrings)."""

    runs: dict = field(default_factory=dict)  # tuple of normalized lines -> description
    lines: dict = field(default_factory=dict)  # normalized answer line -> description

    @property
    def run_lengths(self):
        return sorted({len(run) for run in self.runs})


def _needles(regions, answers):
    needles = _Needles()
    bodies = [(f"the solution region at {r.where()}", r.body) for r in regions]
    bodies += [(f"the answer at {a.where()}", a.body) for a in answers]
    for described, body in bodies:
        lines = _lines("\n".join(body))
        run = min(RUN_LINES, len(lines))
        if run == 0:
            continue
        for i in range(len(lines) - run + 1):
            window = tuple(lines[i : i + run])
            if sum(map(len, window)) >= MIN_RUN_CHARS:
                needles.runs.setdefault(window, described)
    for answer in answers:
        for line in _lines("\n".join(answer.body)):
            if len(line) >= MIN_ANSWER_LINE_CHARS:
                needles.lines.setdefault(line, f"the answer at {answer.where()}")
    return needles


class _Budget:
    """Bytes that may still be unpacked from archives (a zip bomb stops the check)."""

    def __init__(self, limit=_MAX_UNPACKED_BYTES):
        self.left = limit

    def take(self, size, location):
        self.left -= size
        if self.left < 0:
            raise ReleaseError([f"{location}: more than {_MAX_UNPACKED_BYTES // 2**20} MiB "
                                f"to unpack; cannot check it for leaks"])


def _json_strings(value, path=""):
    """(JSON path, string) for every string in a parsed JSON document.

    A list of strings is one string: nbformat stores multi-line text as its lines, each
    but the last ending with a newline; other lists of strings are taken one per line.
    """
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        if value and all(isinstance(v, str) for v in value):
            if all(v.endswith("\n") for v in value[:-1]):
                yield path, "".join(value)
            else:
                yield path, "\n".join(value)
        else:
            for i, item in enumerate(value):
                yield from _json_strings(item, f"{path}/{i}")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _json_strings(item, f"{path}/{key}")


_BASE64_RE = re.compile(rb"[A-Za-z0-9+/=\s]{24,}\Z")


def _decompressed(data, opener, location, budget):
    with opener(io.BytesIO(data)) as stream:
        out = stream.read(max(budget.left, 0) + 1)
    budget.take(len(out), location)
    return out


def _texts(location, data, budget, depth=0):
    """(location, text) of everything a reader can get out of one file's bytes.

    Archives (zip, tar, gzip/bz2/xz streams) are opened whatever their name; notebooks
    give every string of their JSON, and base64 payloads (images, attachments) decoded.
    """
    if depth > _MAX_ARCHIVE_DEPTH:
        raise ReleaseError([f"{location}: archives nested too deep to check for leaks"])
    try:
        if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for info in archive.infolist():
                    if not info.is_dir():
                        budget.take(info.file_size, location)
                        yield from _texts(f"{location}!{info.filename}", archive.read(info),
                                          budget, depth + 1)
            return
        if len(data) >= 512 and data[257:262] == b"ustar":
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
                for member in archive.getmembers():
                    if member.isfile():
                        budget.take(member.size, location)
                        yield from _texts(f"{location}!{member.name}",
                                          archive.extractfile(member).read(), budget, depth + 1)
            return
        for magic, opener in ((b"\x1f\x8b", lambda f: gzip.GzipFile(fileobj=f)),
                              (b"BZh", bz2.BZ2File), (b"\xfd7zXZ", lzma.LZMAFile)):
            if data.startswith(magic):
                inner = _decompressed(data, opener, location, budget)
                yield from _texts(location, inner, budget, depth + 1)
                return
    except ReleaseError:
        raise
    except Exception as exc:  # a damaged archive: refuse rather than ship it unchecked
        raise ReleaseError([f"{location}: looks like an archive but cannot be read "
                            f"({type(exc).__name__}: {exc}); cannot check it for leaks"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # a leak in a binary file is still found
    if location.endswith(".ipynb"):
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if document is not None:
            for path, string in _json_strings(document):
                yield f"{location} {path}", string
                raw = string.encode("utf-8", "surrogatepass")
                if _BASE64_RE.match(raw):
                    try:
                        decoded = base64.b64decode(re.sub(rb"\s", b"", raw), validate=True)
                    except (binascii.Error, ValueError):
                        continue
                    yield from _texts(f"{location} {path} (base64)", decoded, budget, depth + 1)
            return
    yield location, text


def _leaks_in_text(text, needles):
    """{description: first line of the first run found} for the needles in text."""
    found = {}
    variants = [text]
    if "\\n" in text:  # a string literal holding several lines as \n escapes
        unescaped = text.replace("\\n", "\n")
        variants += [unescaped, re.sub(r"[\"']", "\n", unescaped)]
    for variant in variants:
        lines = _lines(variant)
        for run in needles.run_lengths:
            for i in range(len(lines) - run + 1):
                described = needles.runs.get(tuple(lines[i : i + run]))
                if described is not None:
                    found.setdefault(described, (run, lines[i]))
        joined = "\n".join(lines)
        for line, described in needles.lines.items():
            if line in joined:
                found.setdefault(described, (1, line))
    return found


# ---------------------------------------------------------------------------
# Tokens: region code, names and layout aside
# ---------------------------------------------------------------------------

# Every name that is not a keyword, an attribute (after '.') or the name of a keyword
# argument (``axis=`` inside brackets) reads as this one placeholder: renaming changes
# nothing, while the API a copy must call (np.einsum, .sum, axis=) still shows.
ANY_NAME = "$"
_OPERATORS = frozenset(
    "**= //= >>= <<= ... -> := ** // << >> <= >= == != += -= *= /= %= @= &= |= ^= "
    "+ - * / % @ & | ^ ~ < > ( ) [ ] { } , : . =".split()
)
# What makes a statement a computation rather than plumbing (a call, a dict, a return).
_ARITHMETIC = frozenset(
    "+ - * / // % ** @ & | ^ ~ << >> < > <= >= == != += -= *= /= //= %= **= @= &= |= ^= "
    "<<= >>=".split()
)
# Python's tokens, found in any text: numbers, names, operators. Not tokens: white space,
# ';', '#', quotes, backslashes (line continuations; the escapes \n \t \r \" \' \\ are
# skipped whole), the prefixes of string literals (f"...", rb'...'), prompts (>>>, ...)
# at the start of a line, and any other character.
_TOKEN_RE = re.compile(r"""
    (?P<skip>
        ^[ \t]*(?:\#+[ \t]*)*(?:>>>|\.\.\.)(?=[ \t\r]|$)
      | \\[ntr"'\\]
      | (?<![\w'"])[rRbBuUfF]{1,2}(?=['"])
    )
  | (?P<number>
        0[xX][0-9a-fA-F_]+ | 0[oO][0-7_]+ | 0[bB][01_]+
      | (?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?[jJ]?
    )
  | (?P<name>[^\W\d]\w*)
  | (?P<op>
        \*\*= | //= | >>= | <<= | \.\.\. | -> | := | \*\* | // | << | >> | <= | >= | == | !=
      | [-+*/%@&|^]= | [-+*/%@&|^~<>()\[\]{},:.=]
    )
""", re.VERBOSE | re.MULTILINE)
# A comment: '#' to the end of its line outside string literals. Strings are matched only
# to be stepped over; a quote not closed on its line (prose: "don't") opens no string.
_COMMENT_RE = re.compile(r"""
    (?s)('''|\"\"\").*?\1
  | "(?:[^"\\\n]|\\.)*"
  | '(?:[^'\\\n]|\\.)*'
  | (?P<comment>\#[^\n]*)
""", re.VERBOSE)
# A string literal, or the parts of an f-string (Python 3.12+ splits them).
_STRING_TOKENS = frozenset(
    getattr(tokenize, name) for name in ("STRING", "FSTRING_START", "FSTRING_MIDDLE",
                                         "FSTRING_END") if hasattr(tokenize, name)
)


def _regex_raw(text, base=0):
    """Raw tokens (kind, text, start, end) of any text, by _TOKEN_RE."""
    return [(m.lastgroup, m[0], base + m.start(), base + m.end())
            for m in _TOKEN_RE.finditer(text) if m.lastgroup != "skip"]


def _blank_comments(text):
    """text with its comments blanked out (same length, so offsets stay valid)."""
    return _COMMENT_RE.sub(lambda m: " " * len(m[0]) if m["comment"] else m[0], text)


def _python_raw(text):
    """(raw tokens, statement boundaries, comments) of Python source by tokenize, or None
    when it does not tokenize.

    A string literal is read with _TOKEN_RE, as in any other text (so its content counts,
    and both readings agree); a boundary is the index of the first token after a NEWLINE
    or a ';'; comments are their text.
    """
    offsets = [0] + [m.end() for m in re.finditer("\n", text)]
    raw, bounds, comments = [], [], []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            kind, string, (row, column) = tok.type, tok.string, tok.start
            start = offsets[row - 1] + column if row <= len(offsets) else len(text)
            if kind == tokenize.NAME:
                raw.append(("name", string, start, start + len(string)))
            elif kind == tokenize.NUMBER:
                raw.append(("number", string, start, start + len(string)))
            elif kind == tokenize.OP:
                if string == ";":
                    bounds.append(len(raw))
                elif string in _OPERATORS:
                    raw.append(("op", string, start, start + len(string)))
            elif kind in _STRING_TOKENS:
                raw.extend(_regex_raw(string, start))
            elif kind == tokenize.NEWLINE:
                bounds.append(len(raw))
            elif kind == tokenize.COMMENT:
                comments.append(string)
    except (tokenize.TokenError, SyntaxError):
        return None
    return raw, bounds, comments


def _number(text):
    """A number by its value: 1, 1.0 and 1. are one token, as are 1e-5 and 0.00001."""
    plain = text.replace("_", "").lower()
    try:
        value = int(plain, 0) if plain[:2] in ("0x", "0o", "0b") else float(plain)
        return repr(float(value))
    except (ValueError, OverflowError):
        return plain


def _normal_tokens(raw):
    """The tokens compared: ANY_NAME for names but keywords, attributes and keyword
    arguments; numbers by value; operators as they are."""
    tokens, depth = [], 0
    for i, (kind, text, _, _) in enumerate(raw):
        if kind == "op":
            if text in ("(", "[", "{"):
                depth += 1
            elif text in (")", "]", "}"):
                depth = max(depth - 1, 0)
            tokens.append(text)
        elif kind == "number":
            tokens.append(_number(text))
        elif keyword.iskeyword(text) or (i and raw[i - 1][:2] == ("op", ".")):
            tokens.append(text)
        elif (depth and i and i + 1 < len(raw) and raw[i + 1][:2] == ("op", "=")
              and raw[i - 1][:2] in (("op", "("), ("op", ","))):
            tokens.append(text)
        else:
            tokens.append(ANY_NAME)
    return tuple(tokens)


def _token_streams(text):
    """(normalized tokens, raw tokens) of any text, read two ways: all of it (comments and
    string literals read as code) and, when it has a '#', its code alone (comments blanked).

    On Python source the code alone is token for token what tokenize gives (a test checks
    it on the project's files); a regex, because in a release Python also hides in strings,
    markdown, outputs and metadata, which tokenize cannot read.
    """
    full = _regex_raw(text)
    streams = [(_normal_tokens(full), full)]
    if "#" in text:
        code = _regex_raw(_blank_comments(text))
        if len(code) != len(full):
            streams.append((_normal_tokens(code), code))
    return streams


@dataclass
class _TokenNeedle:
    tokens: tuple
    described: str
    statement: str = ""  # a decisive statement's own text; "" for a run of tokens


def _decisive(tokens, comment):
    """Whether a statement (or the text of a comment) gives a solution away alone: at least
    STATEMENT_TOKENS tokens, STATEMENT_OPERATORS arithmetic or comparison operators among
    them (a computation, not a call, a dict or a return), and, in a comment, operators for
    at least COMMENT_OPERATOR_SHARE of its tokens (a formula, not prose)."""
    if len(tokens) < STATEMENT_TOKENS:
        return False
    if sum(t in _ARITHMETIC for t in tokens) < STATEMENT_OPERATORS:
        return False
    operators = sum(t in _OPERATORS and t not in (".", ",") for t in tokens)
    return not comment or operators >= COMMENT_OPERATOR_SHARE * len(tokens)


def _region_tokens(region):
    """(normalized tokens of the code, [(tokens, text, is_comment)] of its statements and
    comments (a comment split at ';')) of a region's body."""
    text = textwrap.dedent("\n".join(region.body))
    python = _python_raw(text)
    if python is not None:
        raw, bounds, comments = python
    else:  # a notebook cell's region that tokenize cannot read: a statement a line
        raw, bounds, comments, base = [], [], [], 0
        for line in text.split("\n"):
            bounds.append(len(raw))
            raw.extend(_regex_raw(_blank_comments(line), base))
            comments.extend(m[0] for m in _COMMENT_RE.finditer(line) if m["comment"])
            base += len(line) + 1
    tokens = _normal_tokens(raw)
    statements = []
    edges = sorted({0, len(raw), *bounds})
    for start, end in zip(edges, edges[1:]):
        said = " ".join(text[raw[start][2] : raw[end - 1][3]].split())
        statements.append((tokens[start:end], said, False))
    for comment in comments:
        for piece in comment.lstrip("#").split(";"):
            statements.append((_normal_tokens(_regex_raw(piece)), " ".join(piece.split()),
                               True))
    return tokens, statements


def _given_texts(regions):
    """The course's given code around the regions: the text of each file or cell that holds
    a region, cut where its regions' bodies are (marker lines kept)."""
    sources = {}
    for region in regions:
        sources.setdefault((region.path, region.cell), (region.source, []))[1].append(region)
    for source, held in sources.values():
        inside = set()
        for region in held:
            inside.update(range(region.begin + 1, region.end))
        segment = []
        for lineno, line in enumerate(source.split("\n"), start=1):
            if lineno not in inside:
                segment.append(line)
            elif segment:
                yield "\n".join(segment)
                segment = []
        if segment:
            yield "\n".join(segment)


def _token_index(needles):
    """{first STATEMENT_TOKENS tokens: [needles]}: every needle is at least that long."""
    index = {}
    for needle in needles:
        index.setdefault(needle.tokens[:STATEMENT_TOKENS], []).append(needle)
    return index


def _token_matches(tokens, index):
    """(needle, position) for every needle of index in a stream of tokens."""
    size = STATEMENT_TOKENS
    for i in range(len(tokens) - size + 1):
        for needle in index.get(tokens[i : i + size], ()):
            if tokens[i : i + len(needle.tokens)] == needle.tokens:
                yield needle, i


def _token_needles(regions):
    """The token index of the solution regions: every run of WINDOW_TOKENS tokens of a
    region's code (of a shorter region, all of its code if that is decisive), every
    decisive statement and comment; less what occurs in the given code."""
    needles = {}
    for region in regions:
        described = f"the solution region at {region.where()}"
        tokens, statements = _region_tokens(region)
        if len(tokens) >= WINDOW_TOKENS:
            runs = [tokens[i : i + WINDOW_TOKENS]
                    for i in range(len(tokens) - WINDOW_TOKENS + 1)]
        else:
            runs = [tokens] if _decisive(tokens, comment=False) else []
        for run in runs:
            needles.setdefault(run, _TokenNeedle(run, described))
        for statement, said, comment in statements:
            if _decisive(statement, comment) and statement not in needles:
                needles[statement] = _TokenNeedle(statement, described, said)
    index = _token_index(needles.values())
    given = set()
    for text in _given_texts(regions):
        for tokens, _ in _token_streams(text):
            given.update(needle.tokens for needle, _ in _token_matches(tokens, index))
    return _token_index(n for n in needles.values() if n.tokens not in given)


def _token_leaks_in_text(text, index):
    """{description: what was found} for the token needles (an index) in text."""
    found = {}
    if not index:
        return found
    for tokens, raw in _token_streams(text):
        for needle, i in _token_matches(tokens, index):
            if needle.described in found:
                continue
            copy = " ".join(text[raw[i][2] : raw[i + len(needle.tokens) - 1][3]].split())
            if needle.statement:
                found[needle.described] = (
                    f"the statement {needle.statement[:80]!r} of {needle.described} (names "
                    f"and layout aside), as {copy[:80]!r}")
            else:
                found[needle.described] = (
                    f"{len(needle.tokens)} tokens in a row of {needle.described} (names and "
                    f"layout aside), from {copy[:80]!r}")
    return found


def find_leaks(files, regions, answers):
    """Problems (strings) for solution or answer text in ``files`` ({path: bytes}).

    See the module docstring for what counts as a leak.
    """
    needles, token_needles = _needles(regions, answers), _token_needles(regions)
    budget, problems, seen = _Budget(), [], {}
    for rel in sorted(files):
        reported = set()
        for location, text in _texts(rel, files[rel], budget):
            if text not in seen:  # a zip's members are the release's files again
                seen[text] = (_leaks_in_text(text, needles),
                              _token_leaks_in_text(text, token_needles))
            lines, tokens = seen[text]
            for described, (run, first) in lines.items():
                if (location, described) in reported:
                    continue
                reported.add((location, described))
                what = (f"{run} consecutive lines" if run > 1 else "a line") + f" of {described}"
                problems.append(f"{location}: holds {what}, from {first[:80]!r}")
            # Found as lines already: not again as tokens.
            for described, what in tokens.items():
                if (location, described) not in reported:
                    reported.add((location, described))
                    problems.append(f"{location}: holds {what}")
    return problems
