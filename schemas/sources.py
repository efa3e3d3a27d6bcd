"""The five input sources: canonical fields, their types, and the header synonyms recognised out of the box.

A source file's header cell is matched against these synonyms after normalisation
(NFKC, whitespace and punctuation removed, lower case), so "身份证号码 " and "身份证号(码)" both map.
A per-source `columns` table in the config overrides or extends this.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum


class FieldType(StrEnum):
    TEXT = "text"
    ID_NUMBER = "id_number"
    DATE = "date"
    AMOUNT = "amount"
    PHONE = "phone"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label_zh: str
    type: FieldType = FieldType.TEXT
    required: bool = False
    synonyms: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceSpec:
    name: str
    label_zh: str
    fields: tuple[FieldSpec, ...]
    one_of: tuple[tuple[str, ...], ...] = field(default=())
    """Groups of fields of which at least one column must be present (e.g. amount unpaid or ordered)."""

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


_ID = ("身份证号", "身份证号码", "证件号码", "证件号", "公民身份号码", "身份证", "身份证件号码", "居民身份证号码", "身份号码", "idno", "idnumber", "sfzh")
_NAME = ("姓名", "名字", "人员姓名", "name", "xm")
_GENDER = ("性别", "sex", "gender", "xb")
_BIRTH = ("出生日期", "出生年月", "出生年月日", "生日", "birthdate", "csrq")
_PHONE = ("联系电话", "电话", "手机", "手机号", "手机号码", "联系方式", "电话号码", "phone", "lxdh")
_ADDRESS = ("住址", "地址", "家庭住址", "现住址", "户籍地址", "居住地址", "户籍所在地", "address", "zz")

VICTIMS = SourceSpec(
    name="victims",
    label_zh="刑事被害人",
    fields=(
        FieldSpec("case_no", "案号", required=True, synonyms=("案号", "案件编号", "案件号", "部门受案号", "统一受案号", "caseno")),
        FieldSpec("charge", "罪名", synonyms=("罪名", "案由", "涉嫌罪名", "案件类别")),
        FieldSpec("name", "被害人姓名", required=True, synonyms=("被害人姓名", "被害人", "当事人姓名", *_NAME)),
        FieldSpec("id_number", "身份证号", FieldType.ID_NUMBER, synonyms=("被害人身份证号", "被害人身份证号码", *_ID)),
        FieldSpec("gender", "性别", synonyms=_GENDER),
        FieldSpec("birth_date", "出生日期", FieldType.DATE, synonyms=_BIRTH),
        FieldSpec("phone", "联系电话", FieldType.PHONE, synonyms=_PHONE),
        FieldSpec("address", "住址", synonyms=_ADDRESS),
        FieldSpec("injury", "伤情", synonyms=("伤情", "损伤程度", "伤残情况", "伤情鉴定", "受伤程度", "伤情等级", "被害人伤情")),
        FieldSpec("incident_date", "案发日期", FieldType.DATE, synonyms=("案发日期", "案发时间", "发案日期", "发案时间", "案发日")),
        FieldSpec("defendant_name", "被告人姓名", synonyms=("被告人姓名", "被告人", "犯罪嫌疑人", "犯罪嫌疑人姓名", "嫌疑人姓名")),
        FieldSpec("unit", "承办单位", synonyms=("承办单位", "承办院", "办案单位", "承办部门", "检察院")),
        FieldSpec("person_role", "人员类型", synonyms=("人员类型", "当事人类型", "人员身份", "身份类别", "类型")),
        FieldSpec("relation", "与被害人关系", synonyms=("与被害人关系", "亲属关系", "关系")),
        FieldSpec("compensation_ordered", "判决赔偿金额", FieldType.AMOUNT, synonyms=("判决赔偿金额", "应赔偿金额", "判赔金额", "赔偿金额")),
        FieldSpec("compensation_received", "已获赔偿金额", FieldType.AMOUNT, synonyms=("已获赔偿金额", "已赔偿金额", "实际获赔金额", "获赔金额", "已获赔偿")),
        FieldSpec("victim_fault", "被害人过错", synonyms=("被害人过错", "被害人是否有过错", "过错情况")),
    ),
)

DISABILITY = SourceSpec(
    name="disability",
    label_zh="残疾人持证",
    fields=(
        FieldSpec("name", "姓名", required=True, synonyms=("持证人姓名", "残疾人姓名", *_NAME)),
        FieldSpec("id_number", "身份证号", FieldType.ID_NUMBER, synonyms=_ID),
        FieldSpec("cert_no", "残疾证号", synonyms=("残疾证号", "残疾证号码", "残疾人证号", "证号", "残疾证编号")),
        FieldSpec("gender", "性别", synonyms=_GENDER),
        FieldSpec("category", "残疾类别", synonyms=("残疾类别", "残疾类型", "类别", "残疾种类")),
        FieldSpec("level", "残疾等级", synonyms=("残疾等级", "等级", "残疾级别", "级别")),
        FieldSpec("issue_date", "发证日期", FieldType.DATE, synonyms=("发证日期", "发证时间", "办证日期", "首次办证日期", "持证日期")),
        FieldSpec("phone", "联系电话", FieldType.PHONE, synonyms=_PHONE),
        FieldSpec("address", "住址", synonyms=_ADDRESS),
    ),
)

SUBSISTENCE = SourceSpec(
    name="subsistence",
    label_zh="低保特困",
    fields=(
        FieldSpec("household_id", "户编号", synonyms=("户编号", "家庭编号", "户号", "救助证号", "低保证号")),
        FieldSpec("head_name", "户主姓名", synonyms=("户主姓名", "户主", "申请人姓名", "申请人")),
        FieldSpec("head_id_number", "户主身份证号", FieldType.ID_NUMBER, synonyms=("户主身份证号", "户主身份证号码", "户主证件号码", "申请人身份证号")),
        FieldSpec("name", "成员姓名", required=True, synonyms=("成员姓名", "家庭成员姓名", "保障对象姓名", *_NAME)),
        FieldSpec("id_number", "成员身份证号", FieldType.ID_NUMBER, synonyms=("成员身份证号", "成员身份证号码", "成员证件号码", *_ID)),
        FieldSpec("relation", "与户主关系", synonyms=("与户主关系", "与申请人关系", "家庭关系", "关系")),
        FieldSpec("gender", "性别", synonyms=_GENDER),
        FieldSpec("aid_type", "救助类型", synonyms=("救助类型", "保障类型", "救助类别", "类型", "类别", "低保类型")),
        FieldSpec("monthly_amount", "月保障金额", FieldType.AMOUNT, synonyms=("月保障金额", "保障金额", "月救助金额", "月发放金额", "发放金额", "金额")),
        FieldSpec("town", "乡镇（街道）", synonyms=("乡镇（街道）", "乡镇街道", "乡镇", "街道", "所属乡镇")),
        FieldSpec("village", "村（社区）", synonyms=("村（社区）", "村社区", "村居", "村", "社区", "所属村")),
        FieldSpec("start_date", "纳入日期", FieldType.DATE, synonyms=("纳入日期", "享受起始日期", "起始日期", "审批日期", "纳入时间", "开始享受时间", "批准日期")),
        FieldSpec("phone", "联系电话", FieldType.PHONE, synonyms=_PHONE),
        FieldSpec("address", "住址", synonyms=_ADDRESS),
    ),
)

ENFORCEMENT = SourceSpec(
    name="enforcement",
    label_zh="终本案件",
    fields=(
        FieldSpec("enforcement_case_no", "执行案号", required=True, synonyms=("执行案号", "案号", "执行案件号")),
        FieldSpec("applicant_name", "申请执行人", required=True, synonyms=("申请执行人", "申请执行人姓名", "申请人", "申请人姓名", "权利人")),
        FieldSpec("applicant_id_number", "申请执行人身份证号", FieldType.ID_NUMBER, synonyms=("申请执行人身份证号", "申请执行人身份证号码", "申请执行人证件号码", "申请人身份证号", "申请人证件号码")),
        FieldSpec("respondent_name", "被执行人", synonyms=("被执行人", "被执行人姓名", "义务人")),
        FieldSpec("respondent_id_number", "被执行人身份证号", FieldType.ID_NUMBER, synonyms=("被执行人身份证号", "被执行人身份证号码", "被执行人证件号码")),
        FieldSpec("amount_ordered", "执行标的金额", FieldType.AMOUNT, synonyms=("执行标的金额", "执行标的", "申请执行标的", "标的金额", "申请执行金额", "应执行金额")),
        FieldSpec("amount_paid", "已执行金额", FieldType.AMOUNT, synonyms=("已执行金额", "已执行到位金额", "执行到位金额", "到位金额")),
        FieldSpec("amount_unpaid", "未执行金额", FieldType.AMOUNT, synonyms=("未执行金额", "未执行到位金额", "未履行金额", "剩余未执行金额")),
        FieldSpec("termination_date", "终本日期", FieldType.DATE, synonyms=("终本日期", "终结本次执行日期", "结案日期", "终本时间", "裁定日期")),
        FieldSpec("court", "执行法院", synonyms=("执行法院", "法院", "承办法院")),
        FieldSpec("cause", "案由", synonyms=("案由", "执行案由", "原审案由")),
        FieldSpec("origin_case_no", "执行依据", synonyms=("执行依据", "执行依据文号", "原审案号", "执行依据案号")),
    ),
    one_of=(("amount_unpaid", "amount_ordered"),),
)

KEY_GROUPS = SourceSpec(
    name="key_groups",
    label_zh="重点人群",
    fields=(
        FieldSpec("name", "姓名", required=True, synonyms=_NAME),
        FieldSpec("id_number", "身份证号", FieldType.ID_NUMBER, synonyms=_ID),
        FieldSpec("gender", "性别", synonyms=_GENDER),
        FieldSpec("group", "人员类别", required=True, synonyms=("人员类别", "群体类别", "重点人群类别", "对象类别", "类别", "人群类型")),
        FieldSpec("list_date", "认定日期", FieldType.DATE, synonyms=("认定日期", "纳入日期", "认定时间", "登记日期", "纳入监测日期")),
        FieldSpec("agency", "报送单位", synonyms=("报送单位", "来源单位", "数据来源", "移送单位")),
        FieldSpec("phone", "联系电话", FieldType.PHONE, synonyms=_PHONE),
        FieldSpec("address", "住址", synonyms=_ADDRESS),
    ),
)

SOURCES: dict[str, SourceSpec] = {s.name: s for s in (VICTIMS, DISABILITY, SUBSISTENCE, ENFORCEMENT, KEY_GROUPS)}

_HEADER_STRIP = re.compile(r"[\s\u3000:：*＊()（）\[\]【】<>《》_\-—.。、/\\'\"“”‘’]+")


def header_key(text: object) -> str:
    """Normalise a header cell for synonym lookup: NFKC, no whitespace/punctuation, lower case."""
    if text is None:
        return ""
    return _HEADER_STRIP.sub("", unicodedata.normalize("NFKC", str(text))).lower()
