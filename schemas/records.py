"""Column contract of the normalised person-record frame (`person_records` table) that resolution consumes.

One row is one mention of a person in one source row (a victim row, a relative row, a
disability certificate, a subsistence-roll member, a 终本 applicant, a key-group entry).
"""

from __future__ import annotations

PERSON_RECORD_COLUMNS: dict[str, tuple[str, str]] = {
    # column: (duckdb type, comment)
    "record_id": ("BIGINT", "记录号: integer, unique in person_records; dense after a full build, kept by an unchanged row "
                            "on later nights (new rows numbered above every id in use)"),
    "record_key": ("VARCHAR", "稳定记录键: source|MD5 of the row's cells (16 hex)|occurrence of that content in the "
                              "source (0, 1, …)|role — the same for as long as the row's content is, whichever file or "
                              "row it is in"),
    "source": ("VARCHAR", "来源: victims / disability / subsistence / enforcement / key_groups"),
    "role": ("VARCHAR", "角色: victim / relative / disability_holder / subsistence_member / applicant / key_group"),
    "file_id": ("BIGINT", "文件号 (ingested_files.file_id)"),
    "source_file": ("VARCHAR", "源文件名"),
    "row_number": ("INTEGER", "源文件行号 (as the spreadsheet shows it, header = row 1)"),
    "name_raw": ("VARCHAR", "原始姓名"),
    "name": ("VARCHAR", "规范姓名: annotations and spaces removed, NFKC, traditional → simplified, unified middle dot"),
    "name_annotation": ("VARCHAR", "姓名备注, e.g. 户主 / 已故 (removed from the name)"),
    "surname": ("VARCHAR", "姓"),
    "name_pinyin": ("VARCHAR", "姓名拼音 (toneless, no spaces, surname overrides applied)"),
    "id_raw": ("VARCHAR", "原始身份证号"),
    "id18": ("VARCHAR", "有效18位身份证号 (check character and birth date valid; 15-digit upgraded), else NULL"),
    "id_candidate": ("VARCHAR", "疑似错录号码: 18 characters after normalisation but failing validation; typo evidence only"),
    "id_status": ("VARCHAR", "号码状态: valid / legacy15 / bad_check / bad_date / damaged / missing"),
    "birth_date": ("DATE", "出生日期 (from the ID when valid, else from the source field)"),
    "sex": ("VARCHAR", "性别 M / F (from the ID when valid, else from the source field)"),
    "region": ("VARCHAR", "行政区划代码 (first 6 digits of a valid ID)"),
    "phone": ("VARCHAR", "电话 (digits only; mobile as 11 digits)"),
    "address": ("VARCHAR", "规范住址"),
    "household_key": ("VARCHAR", "户键: subsistence household id (source-scoped), else NULL"),
    "relation": ("VARCHAR", "关系原文 (与户主关系 / 与被害人关系)"),
    "case_no": ("VARCHAR", "案号 (victims rows; NFKC, no spaces)"),
    "counterpart_name": ("VARCHAR", "案件对方当事人: 被告人 (victims rows) / 被执行人 (终本 rows), as written"),
}
