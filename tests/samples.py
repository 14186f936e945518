"""Small files built in code for tests: valid scans and every kind of bad input."""

from __future__ import annotations

import io
import zipfile

import pymupdf
from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"


def text_image(lines: list[str], size: tuple[int, int] = (1654, 600), fmt: str = "PNG") -> bytes:
    """An image of Vietnamese text lines at 200 dpi."""
    img = Image.new("L", size, 255)
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, 40)
    for i, line in enumerate(lines):
        draw.text((80, 60 + i * 70), line, font=font, fill=0)
    out = io.BytesIO()
    img.save(out, format=fmt, dpi=(200, 200))
    return out.getvalue()


def png(lines: list[str] | None = None) -> bytes:
    return text_image(lines or ["Ủy ban nhân dân phường Ba Đình"])


def jpeg(lines: list[str] | None = None) -> bytes:
    return text_image(lines or ["Sở Tư pháp thành phố Hà Nội"], fmt="JPEG")


def image_pdf(pages: int = 1) -> bytes:
    """A scan-like PDF: one image per page, no text layer."""
    doc = pymupdf.open()
    for n in range(pages):
        page = doc.new_page(width=595, height=842)
        page.insert_image(page.rect, stream=png([f"Trang số {n + 1}: Giấy khai sinh"]))
    return doc.tobytes()


def text_pdf() -> bytes:
    """A born-digital PDF with a text layer."""
    doc = pymupdf.open()
    page = doc.new_page()
    writer = pymupdf.TextWriter(page.rect)
    writer.append(
        (72, 100),
        "Quyết định về việc cấp giấy chứng nhận quyền sử dụng đất cho hộ gia đình",
        font=pymupdf.Font("notos"),
        fontsize=11,
    )
    writer.write_text(page)
    return doc.tobytes()


def encrypted_pdf() -> bytes:
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "secret")
    return doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="u", owner_pw="o")


def truncated_pdf() -> bytes:
    data = image_pdf(2)
    return data[: len(data) // 2]


def corrupt_pdf() -> bytes:
    return b"%PDF-1.7\n" + bytes(range(256)) * 20 + b"\n%%EOF\n"


def bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A tiny PNG that claims (and decodes to) ``width`` x ``height`` pixels."""
    img = Image.new("1", (width, height), 1)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


def multipage_tiff(pages: int = 2) -> bytes:
    frames = [Image.open(io.BytesIO(png([f"Trang {n + 1}"]))).convert("L") for n in range(pages)]
    out = io.BytesIO()
    frames[0].save(
        out,
        format="TIFF",
        save_all=True,
        append_images=frames[1:],
        compression="tiff_lzw",
        dpi=(200, 200),
    )
    return out.getvalue()


def zip_of(entries: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = 0o120777 << 16
            zf.writestr(info, "/etc/passwd")
    return out.getvalue()


def zip_bomb(levels: int = 2) -> bytes:
    """A nested ZIP bomb: zeros compressed, zipped inside a zip."""
    inner = zip_of({"zeros.png": b"\x00" * (20 * 1024 * 1024)})
    data = inner
    for n in range(levels - 1):
        data = zip_of({f"layer{n}.zip": data})
    return data
