-- aidleads database schema (DuckDB). Raw per-source tables raw_<source> are created from
-- schemas/sources.py by pipeline/store.py so they always match the recognised fields.
-- Tables rebuilt by each run: person_records, links, person_members, persons, households.
-- Tables that accumulate: runs, run_counts, ingested_files, quarantine, raw_*, leads, lead_history, lead_events, exports.

CREATE SEQUENCE IF NOT EXISTS file_id_seq START 1;

CREATE TABLE IF NOT EXISTS runs (
    run_id        VARCHAR PRIMARY KEY,
    started_at    TIMESTAMP NOT NULL,
    finished_at   TIMESTAMP,
    status        VARCHAR NOT NULL,
    config_file   VARCHAR,
    message       VARCHAR
);
COMMENT ON TABLE runs IS '运行记录: one row per nightly run';
COMMENT ON COLUMN runs.run_id IS '运行号 (UTC timestamp based)';
COMMENT ON COLUMN runs.started_at IS '开始时间 (UTC)';
COMMENT ON COLUMN runs.finished_at IS '结束时间 (UTC)';
COMMENT ON COLUMN runs.status IS '状态: running / succeeded / failed';
COMMENT ON COLUMN runs.config_file IS '配置文件路径';
COMMENT ON COLUMN runs.message IS '失败原因 (no personal data)';

CREATE TABLE IF NOT EXISTS run_counts (
    run_id  VARCHAR NOT NULL,
    stage   VARCHAR NOT NULL,
    metric  VARCHAR NOT NULL,
    subject VARCHAR NOT NULL,
    value   BIGINT NOT NULL,
    PRIMARY KEY (run_id, stage, metric, subject)
);
COMMENT ON TABLE run_counts IS '运行汇总: counts per run (rows loaded / quarantined per source, links, leads by tier)';
COMMENT ON COLUMN run_counts.run_id IS '运行号';
COMMENT ON COLUMN run_counts.stage IS '阶段: ingest / normalise / resolve / score / export';
COMMENT ON COLUMN run_counts.metric IS '指标名, e.g. rows_loaded, links, leads';
COMMENT ON COLUMN run_counts.subject IS '对象: a source name, a link method, a tier, or "all"';
COMMENT ON COLUMN run_counts.value IS '数值';

CREATE TABLE IF NOT EXISTS stage_state (
    stage      VARCHAR PRIMARY KEY,
    inputs_key VARCHAR NOT NULL,
    run_id     VARCHAR NOT NULL
);
COMMENT ON TABLE stage_state IS '阶段输入指纹: what the last build of a stage was made from (files in force, code, settings); equal inputs → the stage is reused';
COMMENT ON COLUMN stage_state.stage IS '阶段: normalise / resolve';
COMMENT ON COLUMN stage_state.inputs_key IS '输入指纹 (SHA-256 of file ids and hashes in force, code version, settings)';
COMMENT ON COLUMN stage_state.run_id IS '构建该阶段结果的运行号';

CREATE TABLE IF NOT EXISTS ingested_files (
    file_id          BIGINT PRIMARY KEY DEFAULT nextval('file_id_seq'),
    source           VARCHAR NOT NULL,
    path             VARCHAR NOT NULL,
    file_name        VARCHAR NOT NULL,
    sha256           VARCHAR NOT NULL,
    size_bytes       BIGINT NOT NULL,
    sheet            VARCHAR,
    encoding         VARCHAR,
    header_row       INTEGER,
    column_mapping   JSON,
    unmapped_headers JSON,
    rows_read        BIGINT NOT NULL DEFAULT 0,
    rows_loaded      BIGINT NOT NULL DEFAULT 0,
    rows_quarantined BIGINT NOT NULL DEFAULT 0,
    rows_blank       BIGINT NOT NULL DEFAULT 0,
    status           VARCHAR NOT NULL,
    error            VARCHAR,
    run_id           VARCHAR NOT NULL,
    ingested_at      TIMESTAMP NOT NULL
);
COMMENT ON TABLE ingested_files IS '已导入文件: one row per file (per sheet for workbooks) and content version';
COMMENT ON COLUMN ingested_files.file_id IS '文件号';
COMMENT ON COLUMN ingested_files.source IS '来源: victims / disability / subsistence / enforcement / key_groups';
COMMENT ON COLUMN ingested_files.path IS '文件路径 (as configured)';
COMMENT ON COLUMN ingested_files.file_name IS '文件名';
COMMENT ON COLUMN ingested_files.sha256 IS '文件内容 SHA-256; the same content is loaded only once';
COMMENT ON COLUMN ingested_files.size_bytes IS '文件大小 (字节)';
COMMENT ON COLUMN ingested_files.sheet IS '工作表名 (workbooks only)';
COMMENT ON COLUMN ingested_files.encoding IS '文本编码 (CSV only): utf-8 / utf-8-sig / gb18030 / utf-16';
COMMENT ON COLUMN ingested_files.header_row IS '表头所在行 (title rows above it are skipped)';
COMMENT ON COLUMN ingested_files.column_mapping IS '列映射: canonical field → header text';
COMMENT ON COLUMN ingested_files.unmapped_headers IS '未识别的表头 (kept in raw_*.extra_columns)';
COMMENT ON COLUMN ingested_files.rows_read IS '数据行数 (below the header, blank rows included)';
COMMENT ON COLUMN ingested_files.rows_loaded IS '入库行数';
COMMENT ON COLUMN ingested_files.rows_quarantined IS '隔离行数 (see quarantine)';
COMMENT ON COLUMN ingested_files.rows_blank IS '空行数 (no cell filled, or the header row repeated; nothing to keep)';
COMMENT ON COLUMN ingested_files.status IS '状态: loaded / rejected / superseded (a newer version of the same path was loaded)';
COMMENT ON COLUMN ingested_files.error IS '拒收原因 (rejected files)';
COMMENT ON COLUMN ingested_files.run_id IS '导入该文件的运行号';
COMMENT ON COLUMN ingested_files.ingested_at IS '导入时间 (UTC)';

CREATE TABLE IF NOT EXISTS quarantine (
    file_id     BIGINT NOT NULL,
    source      VARCHAR NOT NULL,
    source_file VARCHAR NOT NULL,
    row_number  INTEGER NOT NULL,
    field       VARCHAR,
    reason      VARCHAR NOT NULL,
    raw_row     JSON NOT NULL,
    PRIMARY KEY (file_id, row_number)
);
COMMENT ON TABLE quarantine IS '隔离区: rows that could not be loaded, with the reason; fix them at the source and resend';
COMMENT ON COLUMN quarantine.file_id IS '文件号';
COMMENT ON COLUMN quarantine.source IS '来源';
COMMENT ON COLUMN quarantine.source_file IS '源文件名';
COMMENT ON COLUMN quarantine.row_number IS '行号 (as the spreadsheet shows it, header = row 1)';
COMMENT ON COLUMN quarantine.field IS '出错字段 (canonical name)';
COMMENT ON COLUMN quarantine.reason IS '隔离原因 (中文)';
COMMENT ON COLUMN quarantine.raw_row IS '原始行内容 (header → cell text)';

CREATE TABLE IF NOT EXISTS field_issues (
    file_id     BIGINT NOT NULL,
    source      VARCHAR NOT NULL,
    source_file VARCHAR NOT NULL,
    row_number  INTEGER NOT NULL,
    field       VARCHAR NOT NULL,
    reason      VARCHAR NOT NULL,
    raw_value   VARCHAR,
    PRIMARY KEY (file_id, row_number, field)
);
COMMENT ON TABLE field_issues IS '字段问题: values that could not be read; the row was loaded with the value left empty';
COMMENT ON COLUMN field_issues.file_id IS '文件号';
COMMENT ON COLUMN field_issues.source IS '来源';
COMMENT ON COLUMN field_issues.source_file IS '源文件名';
COMMENT ON COLUMN field_issues.row_number IS '行号 (as the spreadsheet shows it)';
COMMENT ON COLUMN field_issues.field IS '字段 (canonical name)';
COMMENT ON COLUMN field_issues.reason IS '问题 (中文)';
COMMENT ON COLUMN field_issues.raw_value IS '原值';

CREATE TABLE IF NOT EXISTS leads (
    lead_id            VARCHAR PRIMARY KEY,
    case_no            VARCHAR NOT NULL,
    subject_person_id  VARCHAR NOT NULL,
    victim_person_id   VARCHAR NOT NULL,
    subject_role       VARCHAR NOT NULL,
    first_run_id       VARCHAR NOT NULL,
    last_run_id        VARCHAR NOT NULL,
    score              DOUBLE NOT NULL,
    tier               VARCHAR NOT NULL,
    fingerprint        VARCHAR NOT NULL,
    change             VARCHAR NOT NULL,
    status             VARCHAR NOT NULL,
    status_by          VARCHAR,
    status_at          TIMESTAMP,
    assigned_at        TIMESTAMP,
    note               VARCHAR,
    reasons            VARCHAR,
    aid_amount         DOUBLE
);
COMMENT ON TABLE leads IS '线索: one row per lead (person × case); stable lead_id across runs';
COMMENT ON COLUMN leads.lead_id IS '线索编号 (keyed hash of case and person; stable across runs)';
COMMENT ON COLUMN leads.case_no IS '案号';
COMMENT ON COLUMN leads.subject_person_id IS '救助对象人员号 (persons.person_id): the victim, or the relative who carries the burden';
COMMENT ON COLUMN leads.victim_person_id IS '被害人人员号 (persons.person_id)';
COMMENT ON COLUMN leads.subject_role IS '对象身份: 被害人 / 近亲属';
COMMENT ON COLUMN leads.first_run_id IS '首次发现的运行号';
COMMENT ON COLUMN leads.last_run_id IS '最近一次出现的运行号';
COMMENT ON COLUMN leads.score IS '评分 (latest)';
COMMENT ON COLUMN leads.tier IS '优先级: A / B / C (latest)';
COMMENT ON COLUMN leads.fingerprint IS '证据指纹: hash of the reasons; a change flags the lead as changed';
COMMENT ON COLUMN leads.change IS '本次变化: new / changed / unchanged';
COMMENT ON COLUMN leads.status IS '处理状态: new / assigned / verifying / aided / not_eligible / referred / closed';
COMMENT ON COLUMN leads.status_by IS '状态变更人';
COMMENT ON COLUMN leads.status_at IS '状态变更时间 (UTC)';
COMMENT ON COLUMN leads.assigned_at IS '分派时间 (UTC), for the working-day deadline';
COMMENT ON COLUMN leads.note IS '处理备注';
COMMENT ON COLUMN leads.aid_amount IS '救助金额 (元), recorded with the outcome';
COMMENT ON COLUMN leads.reasons IS '线索理由 (latest run), to tell what changed next time';

CREATE TABLE IF NOT EXISTS lead_events (
    lead_id   VARCHAR NOT NULL,
    event_at  TIMESTAMP NOT NULL,
    status    VARCHAR NOT NULL,
    by_whom   VARCHAR,
    note      VARCHAR,
    origin    VARCHAR NOT NULL,
    amount    DOUBLE
);
COMMENT ON TABLE lead_events IS '线索处理记录: every status change, with who and when';
COMMENT ON COLUMN lead_events.lead_id IS '线索编号';
COMMENT ON COLUMN lead_events.event_at IS '时间 (UTC)';
COMMENT ON COLUMN lead_events.status IS '新状态';
COMMENT ON COLUMN lead_events.by_whom IS '操作人';
COMMENT ON COLUMN lead_events.note IS '备注';
COMMENT ON COLUMN lead_events.amount IS '救助金额 (元), when the outcome is aided';
COMMENT ON COLUMN lead_events.origin IS '来源: cli / import (returned leads.xlsx) / run';

CREATE TABLE IF NOT EXISTS lead_history (
    run_id    VARCHAR NOT NULL,
    lead_id   VARCHAR NOT NULL,
    rank      INTEGER NOT NULL,
    score     DOUBLE NOT NULL,
    tier      VARCHAR NOT NULL,
    change    VARCHAR NOT NULL,
    subject_name VARCHAR,
    id_masked VARCHAR,
    phone     VARCHAR,
    address   VARCHAR,
    victim_name VARCHAR,
    charge    VARCHAR,
    injury    VARCHAR,
    incident_date DATE,
    unit      VARCHAR,
    reasons   VARCHAR NOT NULL,
    evidence  VARCHAR NOT NULL,
    source_rows VARCHAR NOT NULL,
    referrals VARCHAR,
    aid_estimate VARCHAR,
    change_detail VARCHAR,
    sources_hit VARCHAR,
    priority_groups VARCHAR,
    PRIMARY KEY (run_id, lead_id)
);
COMMENT ON TABLE lead_history IS '每次运行的线索清单: what each run exported, ranked';
COMMENT ON COLUMN lead_history.run_id IS '运行号';
COMMENT ON COLUMN lead_history.lead_id IS '线索编号';
COMMENT ON COLUMN lead_history.rank IS '排名 (1 = highest score)';
COMMENT ON COLUMN lead_history.score IS '评分';
COMMENT ON COLUMN lead_history.tier IS '优先级 A / B / C';
COMMENT ON COLUMN lead_history.change IS '本次变化: new / changed / unchanged';
COMMENT ON COLUMN lead_history.subject_name IS '救助对象姓名';
COMMENT ON COLUMN lead_history.id_masked IS '身份证号 (脱敏: first 6 and last 4)';
COMMENT ON COLUMN lead_history.phone IS '联系电话 (脱敏)';
COMMENT ON COLUMN lead_history.address IS '住址';
COMMENT ON COLUMN lead_history.victim_name IS '被害人姓名';
COMMENT ON COLUMN lead_history.charge IS '罪名';
COMMENT ON COLUMN lead_history.injury IS '伤情';
COMMENT ON COLUMN lead_history.incident_date IS '案发日期';
COMMENT ON COLUMN lead_history.unit IS '承办单位';
COMMENT ON COLUMN lead_history.reasons IS '线索理由 (中文, with figures; "；" separated)';
COMMENT ON COLUMN lead_history.evidence IS '同一人依据 (中文): why the records are the same person';
COMMENT ON COLUMN lead_history.source_rows IS '来源行: file and row of every record used';
COMMENT ON COLUMN lead_history.referrals IS '建议协同单位及理由';
COMMENT ON COLUMN lead_history.aid_estimate IS '救助金额估算';
COMMENT ON COLUMN lead_history.sources_hit IS '命中来源组合: the sources of the records behind the lead, comma separated';
COMMENT ON COLUMN lead_history.priority_groups IS '重点群体: priority groups the lead belongs to, "、" separated';
COMMENT ON COLUMN lead_history.change_detail IS '变化内容: reasons added or gone since the previous listing';

CREATE TABLE IF NOT EXISTS exports (
    run_id     VARCHAR NOT NULL,
    exported_at TIMESTAMP NOT NULL,
    os_user    VARCHAR,
    path       VARCHAR NOT NULL,
    kind       VARCHAR NOT NULL,
    rows       BIGINT NOT NULL,
    masked     BOOLEAN NOT NULL,
    reason     VARCHAR,
    encrypted  BOOLEAN
);
COMMENT ON TABLE exports IS '导出记录: every file written that holds personal data';
COMMENT ON COLUMN exports.run_id IS '运行号';
COMMENT ON COLUMN exports.exported_at IS '导出时间 (UTC)';
COMMENT ON COLUMN exports.os_user IS '操作系统用户';
COMMENT ON COLUMN exports.path IS '文件路径';
COMMENT ON COLUMN exports.kind IS '类型: leads_xlsx / leads_csv / leads_parquet';
COMMENT ON COLUMN exports.rows IS '行数';
COMMENT ON COLUMN exports.masked IS '是否脱敏';
COMMENT ON COLUMN exports.reason IS '不脱敏的理由';
COMMENT ON COLUMN exports.encrypted IS '是否加密 (password-protected leads.xlsx); NULL for exports recorded before this column existed';
