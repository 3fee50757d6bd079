"""Broken PDFs made from good ones, for fuzzing intake and page reading.

Every mutation is a pure function of a seed PDF's bytes and a ``random.Random``, so a
case is remade from its number alone (``case(number, seed)``) on any machine: a case
that fails in the suite or the bench can be written out and opened by hand.

The seeds are the project's own generated samples (a born-digital letter, scans in
each encoding, a reportlab print), small and at a low resolution so that reading
them is cheap. Structural mutations (page trees, metadata, filters, declared sizes)
are appended as an incremental update, the way a PDF editor saves, so the original
objects and their offsets stay valid and qpdf takes the new objects as the document.
"""

from __future__ import annotations

import io
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache, partial

import pikepdf
from reportlab.lib.pagesizes import letter
from reportlab.pdfgen import canvas

from pipeline.samples import scans

SEED_DPI = 50  # the seeds' scan resolution: tesseract reads a page of it in a blink


@dataclass(frozen=True)
class Case:
    """One fuzz case: its number, the seed PDF it came from, the mutation, the bytes."""

    number: int
    seed_name: str
    kind: str
    data: bytes


# --------------------------------------------------------------------------- seeds


@lru_cache(maxsize=1)
def seed_pdfs() -> dict[str, bytes]:
    """The good PDFs mutations start from, by name; the same bytes on every call."""
    rng = random.Random(13)
    doc = scans.make_document(rng, "progress_note", scans.make_patient(rng), pages=2)
    images = [
        scans.render_page(lines, dpi=SEED_DPI, heading_lines=doc.heading_lines if k == 0 else 0)
        for k, lines in enumerate(doc.pages)
    ]
    seeds = {
        "digital": _plain(_written(lambda out: scans.write_born_digital_pdf(out, doc.pages[:1]))),
        "digital_packed": _written(lambda out: scans.write_born_digital_pdf(out, doc.pages)),
        "reportlab": _reportlab(doc.pages[0]),
    }
    for encoding in ("jpeg", "g4", "flate"):
        seeds[f"scan_{encoding}"] = _plain(
            _written(partial(scans.write_scanned_pdf, images=images[:1], encoding=encoding))
        )
    return seeds


def _written(write: Callable[[io.BytesIO], None]) -> bytes:
    buffer = io.BytesIO()
    write(buffer)
    return buffer.getvalue()


def _plain(data: bytes) -> bytes:
    """The same PDF without object streams, its streams stored unfiltered (but JPEG), so
    that byte-level mutations land on readable structure and raw pixels."""
    with pikepdf.open(io.BytesIO(data)) as pdf:
        return _written(
            lambda out: pdf.save(
                out,
                compress_streams=False,
                stream_decode_level=pikepdf.StreamDecodeLevel.generalized,
                object_stream_mode=pikepdf.ObjectStreamMode.disable,
                deterministic_id=True,
            )
        )


def _reportlab(lines: tuple[str, ...]) -> bytes:
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer, pagesize=letter, pageCompression=0, invariant=1)
    page.setTitle("Progress note")
    page.setAuthor("medarchive fuzz seed")
    y = 740
    for line in lines:
        page.drawString(50, y, line.replace("\t", "    "))
        y -= 15
    page.rect(40, 40, 530, 710)
    page.showPage()
    page.save()
    return buffer.getvalue()


# --------------------------------------------------------------------- the seed's anatomy


@dataclass(frozen=True)
class _Anatomy:
    """What a structural mutation needs to know about a seed to append an update to it."""

    size: int  # the trailer's /Size: the first free object number
    prev: int  # the offset of the last cross-reference section
    root: int
    root_dict: pikepdf.Object
    pages: int
    page: int
    page_dict: pikepdf.Dictionary
    streams: tuple[tuple[int, pikepdf.Stream], ...]  # indirect streams, images and contents
    pdf: pikepdf.Pdf  # kept open while the objects above are used


def _anatomy(pdf: pikepdf.Pdf, data: bytes) -> _Anatomy:
    found = re.findall(rb"startxref\s+(\d+)", data)
    first = pdf.pages[0].obj
    streams = tuple((obj.objgen[0], obj) for obj in pdf.objects if isinstance(obj, pikepdf.Stream) and obj.objgen[0])
    return _Anatomy(
        int(pdf.trailer.Size),
        int(found[-1]) if found else 0,
        pdf.Root.objgen[0],
        pdf.Root,
        pdf.Root.Pages.objgen[0],
        first.objgen[0],
        first,
        streams,
        pdf,
    )


def _dict_with(obj: pikepdf.Object, **raw: bytes) -> bytes:
    """``obj`` written out with the keys in ``raw`` replaced by those raw values."""
    kept = pikepdf.Dictionary({k: v for k, v in obj.items() if k[1:] not in raw})
    body = kept.unparse()
    extra = b"".join(b"/%s %s " % (key.encode(), value) for key, value in raw.items())
    return b"<< " + extra + body[2:]


def _stream(dictionary: bytes, data: bytes, length: int | None = None) -> bytes:
    declared = len(data) if length is None else length
    return b"%s\nstream\n%s\nendstream" % (dictionary[:-2] + b" /Length %d >>" % declared, data)


def _update(data: bytes, anatomy: _Anatomy, objects: dict[int, bytes], **trailer: bytes) -> bytes:
    """``data`` with an incremental update holding ``objects`` and a trailer that chains to it."""
    out = bytearray(data if data.endswith(b"\n") else data + b"\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, objects[number])
    xref = len(out)
    out += b"xref\n"
    for number in sorted(objects):
        out += b"%d 1\n%010d 00000 n \n" % (number, offsets[number])
    size = max(anatomy.size, max(objects, default=0) + 1)
    # Only what a trailer means for the document: a packed seed's trailer is its
    # cross-reference stream's dictionary (/W, /Index, /Filter...).
    kept = {"/Root", "/Info", "/ID"} - {f"/{key}" for key in trailer}
    base = pikepdf.Dictionary({k: v for k, v in anatomy.pdf.trailer.items() if k in kept})
    extra = b"".join(b"/%s %s " % (k.encode(), v) for k, v in trailer.items())
    out += b"trailer\n<< /Size %d /Prev %d %s%s\nstartxref\n%d\n%%%%EOF\n" % (
        size,
        anatomy.prev,
        extra,
        base.unparse()[2:],
        xref,
    )
    return bytes(out)


# ------------------------------------------------------------------ byte-level mutations


def _truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(1, len(data))]


def _flip_bytes(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 24)):
        out[rng.randrange(len(out))] ^= rng.randint(1, 255)
    return bytes(out)


_TOKENS = (
    b"<<",
    b">>",
    b"[",
    b"]",
    b"obj",
    b"endobj",
    b"stream",
    b"endstream",
    b"R",
    b"0",
    b"999999999",
    b"-1",
    b"/Type",
    b"/Pages",
    b"/Kids",
    b"/Length",
    b"(",
    b")",
    b"<",
    b">",
    b"%",
    b"\\",
    b"trailer",
    b"xref",
    b"startxref",
    b"%%EOF",
    b"1 0 R",
    b"1e308",
    b"\x00",
    b"\xff\xfe",
)


def _insert_garbage(data: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(data))
    if rng.random() < 0.5:
        junk = rng.randbytes(rng.randint(1, 512))
    else:
        junk = b" ".join(rng.choice(_TOKENS) for _ in range(rng.randint(1, 64)))
    return data[:at] + junk + data[at:]


def _wrong_startxref(data: bytes, rng: random.Random, value: int | None = None) -> bytes:
    if value is None:
        value = rng.choice((0, rng.randrange(len(data)), len(data) + rng.randint(1, 10**6), 10**20, -7))
    found = list(re.finditer(rb"startxref\s+(\d+)", data))
    if not found:
        return data + b"\nstartxref\n%d\n%%%%EOF\n" % value
    last = found[-1]
    return data[: last.start(1)] + str(value).encode() + data[last.end(1) :]


def _misplaced_xref(data: bytes) -> bytes:
    """``data`` with its last startxref pointing past the end: qpdf has to rebuild the xref."""
    return _wrong_startxref(data, random.Random(0), len(data) + 1000)


def _lying_length(data: bytes, rng: random.Random) -> bytes:
    found = list(re.finditer(rb"/Length (\d+)(?! \d+ R)", data))
    if not found:
        return _flip_bytes(data, rng)
    hit = rng.choice(found)
    digits = len(hit.group(1))
    # The same number of digits keeps every offset, so qpdf trusts the xref and meets the lie.
    value = rng.choice(
        (
            b"0" * digits,
            str(rng.randrange(10**digits)).zfill(digits).encode(),
            b"9" * digits,
            b"99999999999",
            b"-1",
            b"12 0 R",
        )
    )
    return data[: hit.start(1)] + value + data[hit.end(1) :]


def _zeroed_stream(data: bytes, rng: random.Random) -> bytes:
    found = list(re.finditer(rb"stream\r?\n(.*?)endstream", data, re.DOTALL))
    if not found:
        return _flip_bytes(data, rng)
    hit = rng.choice(found)
    return data[: hit.start(1)] + bytes(len(hit.group(1))) + data[hit.end(1) :]


# ---------------------------------------------------------------- structural mutations


def _page_loop(a: _Anatomy, data: bytes, rng: random.Random) -> bytes:
    """A /Kids that points back at its parent (or at the root), or a page that is its own parent."""
    shape = rng.choice(("self", "root_under_page", "parent_is_self", "two_cycle"))
    if shape == "self":
        kids = [*_refs(a.root_dict.Pages.get("/Kids", pikepdf.Array())), b"%d 0 R" % a.pages]
        return _update(data, a, {a.pages: _dict_with(a.root_dict.Pages, Kids=b"[ %s ]" % b" ".join(kids))})
    if shape == "root_under_page":
        return _update(
            data, a, {a.page: _dict_with(a.page_dict, Type=b"/Pages", Kids=b"[ %d 0 R ]" % a.pages, Count=b"1")}
        )
    if shape == "parent_is_self":
        return _update(data, a, {a.page: _dict_with(a.page_dict, Parent=b"%d 0 R" % a.page)})
    extra = a.size
    return _update(
        data,
        a,
        {
            a.pages: _dict_with(a.root_dict.Pages, Kids=b"[ %d 0 R ]" % extra, Count=b"1"),
            extra: b"<< /Type /Pages /Kids [ %d 0 R ] /Count 1 /Parent %d 0 R >>" % (a.pages, a.pages),
        },
    )


def _refs(array: pikepdf.Object) -> list[bytes]:
    return [b"%d %d R" % item.objgen if item.is_indirect else item.unparse() for item in array]


def _deep_tree(a: _Anatomy, data: bytes, rng: random.Random) -> bytes:
    """The first page under a chain of intermediate /Pages nodes, hundreds to tens of thousands deep."""
    depth = rng.choice((64, 300, 1_000, 5_000, 30_000))
    first = a.size
    objects = {}
    for level in range(depth):
        number, parent = first + level, first + level - 1 if level else a.pages
        child = number + 1 if level < depth - 1 else a.page
        objects[number] = b"<< /Type /Pages /Kids [ %d 0 R ] /Count 1 /Parent %d 0 R >>" % (child, parent)
    objects[a.page] = _dict_with(a.page_dict, Parent=b"%d 0 R" % (first + depth - 1))
    objects[a.pages] = _dict_with(a.root_dict.Pages, Kids=b"[ %d 0 R ]" % first, Count=b"1")
    return _update(data, a, objects)


def _many_kids(a: _Anatomy, data: bytes, rng: random.Random) -> bytes:
    """The first page listed again and again (qpdf copies each repeat), or a /Count that lies."""
    if rng.random() < 0.3:
        count = rng.choice((b"0", b"-1", b"2147483647", b"99999999999999", b"(many)"))
        return _update(data, a, {a.pages: _dict_with(a.root_dict.Pages, Count=count)})
    repeats = rng.choice((2, 100, 5_000))
    kids = b" ".join([b"%d 0 R" % a.page] * repeats)
    return _update(data, a, {a.pages: _dict_with(a.root_dict.Pages, Kids=b"[ %s ]" % kids, Count=b"%d" % repeats)})


def _huge_xref(a: _Anatomy, data: bytes, rng: random.Random) -> bytes:
    """A cross-reference or a trailer that declares billions of objects."""
    number = rng.choice((2**31 - 2, 10**9, 2**24, a.size + 100_000))
    update = _update(data, a, {number: b"<< /Type /Annot >>"})
    if rng.random() < 0.5:
        update = update.replace(
            b"trailer\n<< /Size %d" % (number + 1), b"trailer\n<< /Size %d" % rng.choice((2**31 - 1, 2**63 - 1, 0))
        )
    return update


def _metadata(a: _Anatomy, data: bytes, stream: bytes) -> bytes:
    number = a.size
    return _update(data, a, {number: stream, a.root: _dict_with(a.root_dict, Metadata=b"%d 0 R" % number)})


_XMP = (
    b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
    b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta><?xpacket end="w"?>'
)


def _xmp_poison(a: _Anatomy, data: bytes, rng: random.Random) -> bytes:
    """The issue-13 poison: XMP behind an ASCII85 filter with a '{' in it, and a damaged
    cross-reference so that qpdf has to repair the file (and a repaired copy is saved)."""
    junk = b"".join(rng.choice((b"{", b"}", b"~", b"v", b"z", b"<~")) for _ in range(rng.randint(1, 12)))
    stream = _stream(b"<< /Type /Metadata /Subtype /XML /Filter /ASCII85Decode >>", _XMP[:40] + b"{" + junk + b"~>")
    return _misplaced_xref(_metadata(a, data, stream))


def _corrupt_metadata(a: _Anatomy, data: bytes, rng: random.Random) -> bytes:
    kind = rng.randrange(7)
    if kind == 0:
        return _update(
            data, a, {a.root: _dict_with(a.root_dict, Metadata=rng.choice((b"42", b"(xmp)", b"[ ]", b"<< >>")))}
        )
    if kind == 1:
        return _update(data, a, {a.root: _dict_with(a.root_dict, Metadata=b"%d 0 R" % (a.size + 500))})
    if kind == 2:
        return _metadata(
            a, data, _stream(b"<< /Type /Metadata /Subtype /XML /Filter /FlateDecode >>", rng.randbytes(200))
        )
    if kind == 3:
        return _metadata(a, data, _stream(b"<< /Type /Metadata /Subtype /XML >>", _XMP[: rng.randrange(len(_XMP))]))
    if kind == 4:
        laughs = (
            b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
            + b"".join(b'<!ENTITY %s "%s">' % (bytes([98 + i]), (b"&" + bytes([97 + i]) + b";") * 10) for i in range(8))
            + b"]>"
        )
        return _metadata(a, data, _stream(b"<< /Type /Metadata /Subtype /XML >>", laughs + b"<x>&i;</x>"))
    if kind == 5:
        poison = _stream(b"<< /Type /Metadata /Subtype /XML /Filter /ASCII85Decode >>", b"{{{~>")
        return _metadata(a, data, poison)  # the poison on a file that needs no repair
    return _metadata(a, data, _stream(b"<< /Type /Metadata /Subtype /XML >>", _XMP, length=len(_XMP) * 50))


def _corrupt_info(a: _Anatomy, data: bytes, rng: random.Random) -> bytes:
    number = a.size
    info = rng.choice(
        (
            b"42",
            b"[ 1 2 3 ]",
            b"(not a dictionary)",
            b"<< /Title <FEFF00> /Author <FEFFD800> /Producer (\\377\\376x) >>",
            b"<< /Title (%s) >>" % (b"A" * 200_000),
            b"<< /Self %d 0 R /Title %d 0 R >>" % (number, number),
            b"<< /CreationDate (D:99999999999999+99'99') /ModDate 7 /Title /Name >>",
        )
    )
    if rng.random() < 0.3:
        return _update(data, a, {}, Info=b"%d 0 R" % (number + 700))
    return _update(data, a, {number: info}, Info=b"%d 0 R" % number)


_FILTERS = (
    b"/FlateDecode",
    b"/LZWDecode",
    b"/RunLengthDecode",
    b"/DCTDecode",
    b"/JPXDecode",
    b"/JBIG2Decode",
    b"/CCITTFaxDecode",
    b"/ASCIIHexDecode",
    b"/ASCII85Decode",
    b"/Crypt",
    b"/NoSuchFilter",
    b"[ /FlateDecode /FlateDecode /DCTDecode ]",
    b"[ ]",
    b"42",
    b"(Flate)",
)


def _wrong_filter(a: _Anatomy, data: bytes, rng: random.Random) -> bytes:
    number, stream = rng.choice(a.streams)
    changes = {"Filter": rng.choice(_FILTERS)}
    if rng.random() < 0.4:
        changes["DecodeParms"] = rng.choice(
            (
                b"<< /Predictor 15 /Columns 0 >>",
                b"<< /K -1 /Columns 99999999 >>",
                b"<< /Predictor 2 /Colors 99 /BitsPerComponent 3 >>",
                b"7",
            )
        )
    raw = stream.read_raw_bytes()
    return _update(data, a, {number: _stream(_dict_with(_without_length(stream), **changes), raw)})


def _without_length(stream: pikepdf.Stream) -> pikepdf.Dictionary:
    return pikepdf.Dictionary({k: v for k, v in stream.stream_dict.items() if k != "/Length"})


_HUGE = (
    b"2147483647",
    b"4294967297",
    b"1000000000",
    b"99999999999999999999",
    b"0",
    b"-1",
    b"1e30",
    b"100000.5",
    b"46341",
    b"(wide)",
)


def _huge_image(a: _Anatomy, data: bytes, rng: random.Random) -> bytes:
    """An image XObject whose declared size is huge (or nonsense), drawn on the first page."""
    image, content = a.size, a.size + 1
    stream = _stream(
        b"<< /Type /XObject /Subtype /Image /Width %s /Height %s /ColorSpace /DeviceGray "
        b"/BitsPerComponent %s %s>>"
        % (
            rng.choice(_HUGE),
            rng.choice(_HUGE),
            rng.choice((b"1", b"8", b"16", b"0")),
            rng.choice((b"", b"/Filter /FlateDecode ", b"/Filter /DCTDecode ")),
        ),
        rng.randbytes(rng.randint(0, 64)),
    )
    resources = b"<< /XObject << /ImHuge %d 0 R >> >>" % image
    return _update(
        data,
        a,
        {
            image: stream,
            content: _stream(b"<< >>", b"q 612 0 0 792 0 0 cm /ImHuge Do Q"),
            a.page: _dict_with(a.page_dict, Resources=resources, Contents=b"%d 0 R" % content),
        },
    )


_BOXES = (
    b"[ 0 0 14400 14400 ]",
    b"[ 0 0 99999999999 1 ]",
    b"[ 0 0 0 0 ]",
    b"[ 0 0 612 ]",
    b"[ 612 792 0 0 ]",
    b"[ -1e9 -1e9 1e9 1e9 ]",
    b"(letter)",
    b"[ 0 0 612 792 ]",
)
_PAGE_EXTRAS: tuple[dict[str, bytes], ...] = (
    {},
    {"UserUnit": b"75000"},
    {"UserUnit": b"-1"},
    {"Rotate": b"45"},
    {"Rotate": b"99999999999"},
)


def _huge_page(a: _Anatomy, data: bytes, rng: random.Random) -> bytes:
    """A page box that is huge, empty, short, inverted or not an array; a nonsense /UserUnit or /Rotate."""
    box = rng.choice(_BOXES)
    return _update(data, a, {a.page: _dict_with(a.page_dict, MediaBox=box, CropBox=box, **rng.choice(_PAGE_EXTRAS))})


def _form_loop(a: _Anatomy, data: bytes, rng: random.Random) -> bytes:
    """A form XObject that draws itself (or a chain of forms that ends where it began),
    with an image beside it (sometimes huge): a renderer or an image finder that follows
    forms without counting recurses for ever."""
    forms = rng.choice((1, 2, 50))
    first, image, content = a.size, a.size + forms, a.size + forms + 1
    side = rng.choice((b"100000", b"8"))
    objects = {
        image: _stream(
            b"<< /Type /XObject /Subtype /Image /Width %s /Height %s /ColorSpace /DeviceGray "
            b"/BitsPerComponent 8 >>" % (side, side),
            bytes(64),
        )
    }
    for k in range(forms):
        nxt = first + (k + 1) % forms
        objects[first + k] = _stream(
            b"<< /Type /XObject /Subtype /Form /BBox [ 0 0 612 792 ] /Resources << /XObject << "
            b"/Fm %d 0 R /Im %d 0 R >> >> >>" % (nxt, image),
            b"q /Fm Do Q q 1 0 0 1 0 0 cm /Im Do Q",
        )
    objects[content] = _stream(b"<< >>", b"q /FmLoop Do Q")
    objects[a.page] = _dict_with(
        a.page_dict, Resources=b"<< /XObject << /FmLoop %d 0 R >> >>" % first, Contents=b"%d 0 R" % content
    )
    return _update(data, a, objects)


_Structural = Callable[[_Anatomy, bytes, random.Random], bytes]
_BYTE_LEVEL: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "truncate": _truncate,
    "flip_bytes": _flip_bytes,
    "insert_garbage": _insert_garbage,
    "wrong_startxref": _wrong_startxref,
    "lying_length": _lying_length,
    "zeroed_stream": _zeroed_stream,
}
_STRUCTURAL: dict[str, _Structural] = {
    "page_loop": _page_loop,
    "deep_tree": _deep_tree,
    "xmp_poison": _xmp_poison,
    "corrupt_metadata": _corrupt_metadata,
    "corrupt_info": _corrupt_info,
    "wrong_filter": _wrong_filter,
    "huge_image": _huge_image,
    "huge_page": _huge_page,
    "form_loop": _form_loop,
    "many_kids": _many_kids,
    "huge_xref": _huge_xref,
}
KINDS: tuple[str, ...] = (*_BYTE_LEVEL, *_STRUCTURAL, "combined")


def mutate(seed: bytes, rng: random.Random, kind: str | None = None) -> tuple[str, bytes]:
    """One mutation of the PDF ``seed``, of ``kind`` or of a kind ``rng`` picks: (kind, bytes).

    "combined" is a structural mutation followed by a byte-level one.
    """
    kind = kind or rng.choice(KINDS)
    if kind in _BYTE_LEVEL:
        return kind, _BYTE_LEVEL[kind](seed, rng)
    if kind == "combined":
        first, second = rng.choice(sorted(_STRUCTURAL)), rng.choice(sorted(_BYTE_LEVEL))
        return f"{first}+{second}", _BYTE_LEVEL[second](mutate(seed, rng, first)[1], rng)
    if kind not in _STRUCTURAL:
        raise ValueError(f"unknown mutation {kind!r}; expected one of {', '.join(KINDS)}")
    with pikepdf.open(io.BytesIO(seed)) as pdf:
        return kind, _STRUCTURAL[kind](_anatomy(pdf, seed), seed, rng)


def case(number: int, seed: int = 0) -> Case:
    """Case ``number`` of the sequence ``seed``: every kind in turn, on a seed PDF picked at random."""
    rng = random.Random(f"{seed}:{number}")
    seeds = seed_pdfs()
    name = rng.choice(sorted(seeds))
    kind, data = mutate(seeds[name], rng, KINDS[number % len(KINDS)])
    return Case(number, name, kind, data)


def cases(n: int, seed: int = 0) -> Iterator[Case]:
    """The first ``n`` cases of the sequence ``seed``."""
    return (case(number, seed) for number in range(n))


def xmp_poison_pdf() -> bytes:
    """The issue-13 poison pill, the same bytes on every call: a one-page born-digital
    letter whose XMP cannot be decoded (ASCII85 with a '{') and whose cross-reference
    is damaged, so that opening it needs qpdf's repair and saving it trips on the XMP."""
    seed = seed_pdfs()["digital"]
    with pikepdf.open(io.BytesIO(seed)) as pdf:
        anatomy = _anatomy(pdf, seed)
        stream = _stream(b"<< /Type /Metadata /Subtype /XML /Filter /ASCII85Decode >>", _XMP[:40] + b"{~>")
        return _misplaced_xref(_metadata(anatomy, seed, stream))
