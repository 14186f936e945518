"""Verification reports: JSON (simple and detailed), HTML and PDF in Vietnamese, ETSI XML.

The HTML and PDF reports are for a clerk, not a PKI expert: a label from DESIGN.md's table, the
signer and the time in words, the reasons in plain Vietnamese, and the technical facts folded
away at the end. The JSON forms are for programs (``sohoa verify --json`` prints the simple one).
"""

from __future__ import annotations

import functools
import html
import io
from datetime import datetime
from typing import Any

from signing.stamp import format_vn_time
from signing.validator import Indication, Report, SignatureResult, Verdict

LABELS: dict[Verdict, str] = {
    Verdict.VALID: "Hợp lệ",
    Verdict.INVALID: "Không hợp lệ",
    Verdict.INDETERMINATE: "Chưa xác nhận được",
    Verdict.NO_SIGNATURE: "Không có chữ ký số",
    Verdict.UNREADABLE: "Không đọc được tệp",
}

DOCUMENT_STATUS_LABELS: dict[str, str] = {
    "revoked": "văn bản đã bị thu hồi",
    "superseded": "đã có bản mới",
    "expired": "văn bản đã hết hiệu lực",
}

#: One sentence a clerk can act on, per verdict.
SUMMARIES: dict[Verdict, str] = {
    Verdict.VALID: "Chữ ký số trên tệp hợp lệ và tệp không bị sửa sau khi ký.",
    Verdict.INVALID: "Không dùng được tệp này: chữ ký số không hợp lệ.",
    Verdict.INDETERMINATE: (
        "Tệp chưa bị phát hiện sửa đổi, nhưng chưa xác nhận được người ký hoặc tình trạng "
        "chứng thư. Cần kiểm tra lại hoặc hỏi cơ quan cấp."
    ),
    Verdict.NO_SIGNATURE: "Tệp không có chữ ký số nào để kiểm tra.",
    Verdict.UNREADABLE: "Không mở được tệp: tệp không phải PDF, bị hỏng, bị cắt hoặc có mật khẩu.",
}

REASONS: dict[str, str] = {
    "hash_failure": "Tệp đã bị sửa sau khi ký",
    "sig_crypto_failure": "Chữ ký số bị hỏng hoặc không khớp với chứng thư của người ký",
    "modified_after_signing": (
        "Tệp đã bị thay đổi sau khi ký (thêm hoặc bớt trang, sửa nội dung, hoặc thêm ghi chú "
        "không được phép)"
    ),
    "revoked_before_signing": "Chứng thư của người ký đã bị thu hồi trước thời điểm ký",
    "revoked_no_poe": (
        "Chứng thư của người ký đã bị thu hồi và không có dấu thời gian chứng minh chữ ký "
        "được tạo trước khi thu hồi"
    ),
    "no_trusted_root": "Không tìm thấy chứng thư gốc tin cậy",
    "expired_no_poe": (
        "Chứng thư của người ký đã hết hạn và không có dấu thời gian chứng minh chữ ký được "
        "tạo khi chứng thư còn hiệu lực"
    ),
    "revocation_unavailable": (
        "Chưa kiểm tra được chứng thư của người ký có bị thu hồi hay không (máy chủ kiểm tra "
        "không phản hồi)"
    ),
    "not_yet_valid": "Chữ ký được tạo trước ngày chứng thư của người ký có hiệu lực",
    "weak_algorithm": "Chữ ký dùng thuật toán mã hóa không còn được coi là an toàn",
    "chain_invalid": "Chứng thư của người ký không hợp lệ",
    "unprocessable": "Không đọc được chữ ký số trong tệp",
}

WARNINGS: dict[str, str] = {
    "annotations_after_signing": (
        "Sau khi ký, tệp có thêm hoặc bớt ghi chú (annotation); việc này được phép nhưng cần "
        "xem kỹ nội dung hiển thị"
    ),
    "form_filled_after_signing": "Sau khi ký, một số ô trong biểu mẫu của tệp đã được điền",
    "timestamp_not_verified": "Không xác minh được dấu thời gian đi kèm chữ ký",
    "validated_at_timestamp_time": (
        "Chứng thư của người ký nay đã hết hạn, nhưng dấu thời gian chứng minh chữ ký được tạo "
        "khi chứng thư còn hiệu lực"
    ),
    "revoked_after_signing": (
        "Chứng thư của người ký đã bị thu hồi sau thời điểm ký; dấu thời gian chứng minh chữ ký "
        "có trước khi thu hồi"
    ),
    "validated_with_embedded_revocation_data": (
        "Máy chủ kiểm tra chứng thư không phản hồi; kết quả dựa trên thông tin kiểm tra được "
        "lưu sẵn trong tệp lúc ký"
    ),
    "validation_error": "Có lỗi khi kiểm tra chữ ký; kết quả dựa trên kiểm tra rút gọn",
    "not_pades": "Chữ ký theo định dạng cũ (không phải PAdES)",
    "document_timestamp_untrusted": "Không xác minh được dấu thời gian lưu trữ của tệp",
    "signature_fields_unreadable": "Không đọc được danh sách chữ ký trong tệp",
    "only_document_timestamps": "Tệp chỉ có dấu thời gian, không có chữ ký của người ký",
}

PADES_WORDS: dict[str, str] = {
    "B-B": "chữ ký cơ bản, không có dấu thời gian",
    "B-T": "có dấu thời gian",
    "B-LT": "có dấu thời gian và thông tin kiểm tra lưu kèm",
    "B-LTA": "có dấu thời gian, thông tin kiểm tra và dấu thời gian lưu trữ dài hạn",
}


def label(report: Report) -> str:
    """The label shown to people, with the e-copy's status when it has one."""
    text = LABELS[report.verdict]
    extra = DOCUMENT_STATUS_LABELS.get(report.document_status or "")
    return f"{text} ({extra})" if extra else text


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _modifications(result: SignatureResult) -> str | None:
    return result.modification_level.lower() if result.modification_level else None


def to_json(report: Report, *, detailed: bool = False) -> dict[str, Any]:
    """The report as JSON-ready data.

    The simple form is the contract of ``sohoa verify --json`` (DESIGN.md): ``verdict``,
    ``label``, ``signatures`` (signer, signing time, timestamped, intact, trusted, revocation,
    pades_level, modifications, indication, sub_indication) and ``document_status``. The
    detailed form adds every field of every result, the document timestamps, reasons, warnings,
    errors and the file's SHA-256.
    """
    out: dict[str, Any] = {
        "verdict": report.verdict.value,
        "label": label(report),
        "document_status": report.document_status,
        "signatures": [
            {
                "signer": s.signer_cn,
                "organization": s.signer_o,
                "signing_time": _iso(s.signing_time),
                "timestamped": s.timestamped,
                "intact": s.intact,
                "trusted": s.trusted,
                "revocation": s.revocation.value,
                "pades_level": s.pades_level,
                "modifications": _modifications(s),
                "indication": s.indication.value,
                "sub_indication": s.sub_indication,
            }
            for s in report.signatures
        ],
    }
    if report.verdict == Verdict.UNREADABLE:
        out["error"] = report.error
    if not detailed:
        return out
    out.update(
        {
            "sha256": report.sha256,
            "size": report.size,
            "validated_at": _iso(report.validated_at),
            "reasons": [{"code": code, "text": REASONS.get(code, code)} for code in report.reasons],
            "warnings": [
                {"code": code, "text": WARNINGS.get(code, code)} for code in report.warnings
            ],
            "error": report.error,
            "signatures": [s.to_dict() for s in report.signatures],
            "timestamps": [t.to_dict() for t in report.timestamps],
        }
    )
    return out


def to_etsi_xml(report: Report) -> str | None:
    """ETSI TS 119 102-2 validation report, when validation was asked for it
    (``ValidateOptions(etsi_report=True)``) and pyHanko could build it."""
    return report.etsi_xml


# -- HTML -------------------------------------------------------------------------------------
_COLOURS = {
    Verdict.VALID: "#1b7a2f",
    Verdict.INVALID: "#b3261e",
    Verdict.INDETERMINATE: "#a15c00",
    Verdict.NO_SIGNATURE: "#555555",
    Verdict.UNREADABLE: "#555555",
}

_RESULT_WORDS = {
    Indication.TOTAL_PASSED: "Hợp lệ",
    Indication.TOTAL_FAILED: "Không hợp lệ",
    Indication.INDETERMINATE: "Chưa xác nhận được",
}

_CSS = """
body { font-family: noto, sans-serif; font-size: 11pt; color: #1d1d1d; }
h1 { font-size: 15pt; margin: 0 0 4pt 0; }
h2 { font-size: 12pt; margin: 14pt 0 4pt 0; }
.label { font-size: 18pt; font-weight: bold; margin: 6pt 0; }
.muted { color: #555555; font-size: 9pt; }
p.row { margin: 1pt 0; }
.k { color: #555555; }
ul { margin: 2pt 0 2pt 14pt; padding: 0; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _when(moment: datetime | None) -> str:
    return format_vn_time(moment) if moment is not None else "không rõ"


def _signature_html(index: int, sig: SignatureResult) -> str:
    if sig.timestamped and sig.timestamp_trusted:
        time_note = "theo dấu thời gian"
    elif sig.signing_time is not None:
        time_note = "theo máy tính của người ký, chưa được xác nhận"
    else:
        time_note = ""
    rows = [
        ("Người ký", sig.signer_cn or "không rõ"),
        ("Cơ quan, tổ chức", sig.signer_o or "không rõ"),
        ("Thời điểm ký", f"{_when(sig.signing_time)} {f'({time_note})' if time_note else ''}"),
        ("Kết quả", _RESULT_WORDS[sig.indication]),
    ]
    # paragraphs, not a table: PyMuPDF's Story ignores column widths
    lines = "".join(f'<p class="row"><span class="k">{_e(k)}:</span> {_e(v)}</p>' for k, v in rows)
    reasons = "".join(f"<li>{_e(REASONS.get(c, c))}</li>" for c in sig.reasons)
    warnings = "".join(f"<li>{_e(WARNINGS.get(c, c))}</li>" for c in sig.warnings)
    parts = [f"<h2>Chữ ký {index}</h2>", lines]
    if reasons:
        parts.append(f"<p>Lý do:</p><ul>{reasons}</ul>")
    if warnings:
        parts.append(f"<p>Lưu ý:</p><ul>{warnings}</ul>")
    return "\n".join(parts)


def _technical_html(report: Report) -> str:
    items = [f"<li>SHA-256 của tệp: {_e(report.sha256)}</li>"]
    for i, s in enumerate(report.signatures, start=1):
        level = s.pades_level or "?"
        items.append(
            "<li>"
            + _e(
                f"Chữ ký {i}: {s.indication.value}"
                + (f" / {s.sub_indication}" if s.sub_indication else "")
                + f"; PAdES {level} ({PADES_WORDS.get(level, '')})"
                + f"; toàn vẹn: {s.intact}; mật mã: {s.crypto_valid}; tin cậy: {s.trusted}"
                + f"; thu hồi: {s.revocation.value}"
                + (f"; sửa đổi sau ký: {s.modification_level}" if s.modification_level else "")
                + (f"; lỗi: {s.error}" if s.error else "")
            )
            + "</li>"
        )
    for t in report.timestamps:
        items.append(
            "<li>"
            + _e(
                f"Dấu thời gian lưu trữ {_when(t.timestamp_time)}: {t.indication.value}"
                + (f" / {t.sub_indication}" if t.sub_indication else "")
            )
            + "</li>"
        )
    return f'<ul class="muted">{"".join(items)}</ul>'


def _body_html(report: Report, filename: str | None) -> str:
    colour = _COLOURS[report.verdict]
    parts = [
        "<h1>Kết quả kiểm tra chữ ký số</h1>",
        f'<p class="muted">Tệp: {_e(filename)}</p>' if filename else "",
        f'<p class="muted">Kiểm tra lúc: {_e(_when(report.validated_at))}</p>',
        f'<p class="label" style="color: {colour}">{_e(label(report))}</p>',
        f"<p>{_e(SUMMARIES[report.verdict])}</p>",
    ]
    status = DOCUMENT_STATUS_LABELS.get(report.document_status or "")
    if status:
        advice = (
            "Chữ ký trên bản này vẫn đúng, nhưng không nên dùng bản này nữa."
            if report.verdict == Verdict.VALID
            else "Không nên dùng bản này nữa."
        )
        parts.append(f"<p><b>{_e('Lưu ý: ' + status + '.')}</b> {_e(advice)}</p>")
    if report.verdict == Verdict.UNREADABLE and report.error:
        parts.append(f'<p class="muted">Chi tiết: {_e(report.error)}</p>')
    for i, sig in enumerate(report.signatures, start=1):
        parts.append(_signature_html(i, sig))
    if report.signatures or report.timestamps:
        parts.append("<h2>Thông tin kỹ thuật</h2>")
        parts.append(_technical_html(report))
    return "\n".join(p for p in parts if p)


def to_html(report: Report, *, filename: str | None = None) -> str:
    """A self-contained HTML page in Vietnamese (all values escaped)."""
    return (
        '<!DOCTYPE html>\n<html lang="vi"><head><meta charset="utf-8">'
        "<title>Kết quả kiểm tra chữ ký số</title>"
        f"<style>{_CSS}</style></head><body>\n"
        f"{_body_html(report, filename)}\n</body></html>\n"
    )


# -- PDF --------------------------------------------------------------------------------------
@functools.cache
def _font_archive() -> Any:
    import pymupdf

    try:
        from pymupdf_fonts import NotoSans_Bold, NotoSans_Regular

        regular, bold = bytes(NotoSans_Regular.fontbuffer), bytes(NotoSans_Bold.fontbuffer)
    except ImportError:
        regular = bold = bytes(pymupdf.Font("notos").buffer)
    archive = pymupdf.Archive()
    archive.add(regular, "NotoSans-Regular.ttf")
    archive.add(bold, "NotoSans-Bold.ttf")
    return archive


_FONT_CSS = (
    "@font-face { font-family: noto; src: url(NotoSans-Regular.ttf); }\n"
    "@font-face { font-family: noto; src: url(NotoSans-Bold.ttf); font-weight: bold; }\n"
)


def to_pdf(report: Report, *, filename: str | None = None) -> bytes:
    """The HTML report laid out on A4 by PyMuPDF, in Noto Sans (subset) so Vietnamese renders."""
    import pymupdf

    story = pymupdf.Story(
        html=_body_html(report, filename), user_css=_FONT_CSS + _CSS, archive=_font_archive()
    )
    page = pymupdf.paper_rect("a4")
    frame = pymupdf.Rect(page.x0 + 50, page.y0 + 50, page.x1 - 50, page.y1 - 50)
    buffer = io.BytesIO()
    writer = pymupdf.DocumentWriter(buffer)
    more = True
    while more:
        device = writer.begin_page(page)
        more, _filled = story.place(frame)
        story.draw(device)
        writer.end_page()
    writer.close()
    doc = pymupdf.open(stream=buffer.getvalue(), filetype="pdf")
    try:
        doc.set_metadata({"title": "Kết quả kiểm tra chữ ký số", "producer": "sohoa"})
        doc.subset_fonts()
        return doc.tobytes(garbage=3, deflate=True)
    finally:
        doc.close()
