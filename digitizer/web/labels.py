"""Words the pages show people: Vietnamese names of states, types, fields, reasons, errors."""

from __future__ import annotations

import re

from digitizer.doctypes import DOC_TYPES

#: Document states as a clerk reads them (``storage.db.DocumentState``).
STATES: dict[str, str] = {
    "uploaded": "Đã nhận, chờ xếp hàng",
    "queued": "Đang chờ xử lý",
    "processing": "Đang xử lý (nhận dạng chữ)",
    "failed": "Lỗi",
    "needs_review": "Cần kiểm tra",
    "ready": "Sẵn sàng",
    "approved": "Đã duyệt",
    "issued": "Đã cấp bản điện tử",
    "superseded": "Đã có bản mới",
    "revoked": "Đã thu hồi",
}

#: CSS class of a state's badge.
STATE_TONES: dict[str, str] = {
    "uploaded": "wait",
    "queued": "wait",
    "processing": "busy",
    "failed": "bad",
    "needs_review": "warn",
    "ready": "good",
    "approved": "good",
    "issued": "good",
    "superseded": "muted",
    "revoked": "bad",
}

DOC_TYPE_LABELS: dict[str, str] = {
    "birth_certificate": "Giấy khai sinh",
    "citizen_id": "Căn cước / Căn cước công dân",
    "marriage_certificate": "Giấy chứng nhận kết hôn",
    "death_certificate": "Giấy chứng tử",
    "residence_confirmation": "Giấy xác nhận thông tin về cư trú",
    "land_use_certificate": "Giấy chứng nhận quyền sử dụng đất",
    "diploma": "Văn bằng, chứng chỉ",
    "decision": "Quyết định",
    "official_letter": "Công văn",
    "business_registration": "Giấy chứng nhận đăng ký kinh doanh",
    "other": "Loại khác",
}
assert set(DOC_TYPE_LABELS) == set(DOC_TYPES)

_FIELD_BASES: dict[str, str] = {
    "full_name": "Họ, chữ đệm và tên",
    "name": "Họ và tên",
    "date_of_birth": "Ngày sinh",
    "sex": "Giới tính",
    "place_of_birth": "Nơi sinh",
    "personal_id": "Số định danh cá nhân",
    "mother_name": "Họ tên mẹ",
    "father_name": "Họ tên cha",
    "document_number": "Số văn bản",
    "issue_date": "Ngày cấp",
    "issuer": "Cơ quan cấp",
    "signer": "Người ký",
    "valid_until": "Có giá trị đến",
    "date_of_death": "Ngày chết",
    "place_of_death": "Nơi chết",
    "place_of_residence": "Nơi cư trú",
    "parcel_number": "Số thửa đất",
    "map_sheet": "Số tờ bản đồ",
    "area": "Diện tích",
    "business_name": "Tên doanh nghiệp",
}
_SPOUSES = {"husband": "chồng", "wife": "vợ"}

ROLES: dict[str, str] = {
    "clerk": "Cán bộ một cửa",
    "approver": "Lãnh đạo duyệt ký",
    "verifier": "Cán bộ xác minh",
    "admin": "Quản trị",
    "portal": "Cổng dịch vụ",
}

#: Actions of the audit trail, as people read them (unknown ones show their code).
AUDIT_ACTIONS: dict[str, str] = {
    "document.create": "Tải lên",
    "document.read": "Xem tài liệu",
    "document.reprocess": "Xử lý lại",
    "batch.read": "Xem lô",
    "review.read": "Mở trang kiểm tra",
    "review.page": "Xem ảnh trang",
    "review.correct": "Sửa thông tin",
    "review.approve": "Duyệt",
    "review.list": "Xem hàng chờ",
    "ecopy.issue": "Ký, cấp bản điện tử",
    "ecopy.download": "Tải bản điện tử",
    "ecopy.verify": "Xác minh bản điện tử",
    "ecopy.revoke": "Thu hồi bản điện tử",
    "ecopy.read": "Xem bản điện tử",
    "audit.read": "Xem nhật ký",
    "search.query": "Tìm kiếm",
}

#: Problems (``digitizer.errors`` slugs) as a sentence for people.
PROBLEMS: dict[str, str] = {
    "bad-input": "Không nhận được tệp này.",
    "empty-file": "Tệp rỗng.",
    "unsupported-media-type": "Loại tệp không được hỗ trợ (chỉ nhận PDF, JPEG, PNG, TIFF, ZIP).",
    "file-too-large": "Tệp lớn hơn giới hạn cho phép.",
    "too-many-pages": "Tài liệu có nhiều trang hơn giới hạn cho phép.",
    "image-too-large": "Ảnh có độ phân giải vượt giới hạn cho phép.",
    "corrupt-file": "Tệp bị hỏng hoặc bị cắt cụt.",
    "encrypted-file": "Tệp PDF có đặt mật khẩu.",
    "unsafe-archive": (
        "Tệp ZIP không an toàn (đường dẫn lạ, liên kết, nén lồng nhau hoặc nén quá mức)."
    ),
    "unreadable-pdf": "Không đọc được tệp: tệp không phải PDF, bị hỏng, bị cắt hoặc có mật khẩu.",
    "invalid-personal-id": "Số định danh cá nhân không hợp lệ (12 chữ số).",
    "not-authenticated": "Cần đăng nhập.",
    "forbidden": "Tài khoản của bạn không có quyền thực hiện việc này.",
    "too-many-failed-authentications": "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau.",
    "not-found": "Không tìm thấy (hoặc không thuộc cơ quan của bạn).",
    "conflict": "Tài liệu đang ở trạng thái không cho phép thao tác này.",
    "review-first": "Tài liệu cần được cán bộ kiểm tra và duyệt trước.",
    "invalid-request": "Thông tin gửi lên không hợp lệ.",
    "invalid-correction": "Giá trị sửa không hợp lệ.",
    "service-unavailable": "Hệ thống tạm thời không phục vụ được. Vui lòng thử lại sau ít phút.",
    "method-not-allowed": "Thao tác không được hỗ trợ.",
    "http-error": "Yêu cầu không thực hiện được.",
}


def doc_type(code: str | None) -> str:
    if not code:
        return "Chưa xác định"
    return DOC_TYPE_LABELS.get(code, code)


def field(name: str) -> str:
    """``husband_date_of_birth`` -> "Ngày sinh (chồng)"."""
    match = re.match(r"^(husband|wife)_(.+)$", name)
    if match:
        base = _FIELD_BASES.get(match.group(2), match.group(2))
        return f"{base} ({_SPOUSES[match.group(1)]})"
    return _FIELD_BASES.get(name, name.replace("_", " "))


def state(code: str) -> str:
    return STATES.get(code, code)


def reason(code: str) -> str:
    """A review reason (``type:X``, ``low:FIELD``, ``missing:FIELD``, others) in words."""
    kind, _, arg = code.partition(":")
    if kind == "type":
        return "Chưa chắc loại giấy tờ"
    if kind == "low":
        return f"Chưa chắc: {field(arg)}"
    if kind == "missing":
        return f"Thiếu: {field(arg)}"
    if kind == "duplicate":
        return "Có thể trùng với tài liệu đã tải lên"
    if kind == "ocr":
        return "Chữ nhận dạng chưa rõ"
    return code
