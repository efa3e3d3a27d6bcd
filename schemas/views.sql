-- Analyst views (schema `analyst`): the documented way to query aidleads without reading the code.
-- See docs/analyst_guide.md. No view shows a raw ID number or a full phone number: persons carry
-- `id_hmac` (HMAC-SHA256 with a key kept outside the database), records a masked ID (first 6 and last 4).
--
-- pipeline/store.py runs this file after the tables (every time the database is opened for writing).
-- A view over a table a run has not made yet (persons, links, facts …) is skipped until it exists.
-- Each view's block starts with CREATE OR REPLACE VIEW; its COMMENTs follow it.

CREATE SCHEMA IF NOT EXISTS analyst;

CREATE OR REPLACE VIEW analyst.leads_explained AS
WITH latest AS (
    SELECT h.*, row_number() OVER (PARTITION BY h.lead_id ORDER BY h.run_id DESC) AS nth
    FROM main.lead_history h
),
last_good AS (SELECT max(run_id) AS run_id FROM main.runs WHERE status = 'succeeded')
SELECT l.lead_id,
       l.tier,
       l.score,
       h.rank,
       l.status,
       CASE l.status WHEN 'new' THEN '待分派' WHEN 'assigned' THEN '已分派' WHEN 'verifying' THEN '核查中'
                     WHEN 'aided' THEN '已救助' WHEN 'not_eligible' THEN '不符合条件' WHEN 'referred' THEN '已移送'
                     WHEN 'closed' THEN '已办结' ELSE l.status END AS status_zh,
       l.change,
       CASE l.change WHEN 'new' THEN '新增' WHEN 'changed' THEN '有变化' WHEN 'unchanged' THEN '无变化' ELSE l.change END AS change_zh,
       h.change_detail,
       coalesce(h.run_id = (SELECT run_id FROM last_good), false) AS in_latest_list,
       fr.started_at AS first_found_at,
       l.first_run_id,
       l.last_run_id,
       l.case_no,
       h.charge,
       h.injury,
       h.incident_date,
       h.unit,
       l.subject_role,
       h.subject_name,
       h.id_masked,
       p.id_hmac,
       h.phone AS phone_masked,
       h.victim_name,
       h.reasons,
       h.referrals,
       h.aid_estimate,
       h.evidence,
       h.source_rows,
       h.sources_hit,
       h.priority_groups,
       l.status_by,
       l.status_at,
       l.assigned_at,
       CASE WHEN l.status IN ('assigned', 'verifying') AND l.assigned_at IS NOT NULL THEN
           (SELECT count(*) FROM generate_series(CAST(l.assigned_at AS DATE) + 1, current_date, INTERVAL 1 DAY) g(day)
            WHERE isodow(day) < 6)
       END AS working_days_open,
       l.aid_amount,
       l.note,
       l.subject_person_id,
       l.victim_person_id
FROM main.leads l
LEFT JOIN latest h ON h.lead_id = l.lead_id AND h.nth = 1
LEFT JOIN main.runs fr ON fr.run_id = l.first_run_id
LEFT JOIN main.persons p ON p.person_id = l.subject_person_id;
COMMENT ON VIEW analyst.leads_explained IS '线索（含说明）: one row per lead — its latest listing, why it was raised, what to do, and what happened to it';
COMMENT ON COLUMN analyst.leads_explained.lead_id IS '线索编号（跨运行稳定）';
COMMENT ON COLUMN analyst.leads_explained.tier IS '优先级：A（≥70分）/ B（≥45分）/ C（≥25分）';
COMMENT ON COLUMN analyst.leads_explained.score IS '评分（最近一次）';
COMMENT ON COLUMN analyst.leads_explained.rank IS '最近一次列出时的排名（1 = 最高分）';
COMMENT ON COLUMN analyst.leads_explained.status IS '处理状态代码：new / assigned / verifying / aided / not_eligible / referred / closed';
COMMENT ON COLUMN analyst.leads_explained.status_zh IS '处理状态：待分派 / 已分派 / 核查中 / 已救助 / 不符合条件 / 已移送 / 已办结';
COMMENT ON COLUMN analyst.leads_explained.change IS '最近一次运行的变化代码：new / changed / unchanged';
COMMENT ON COLUMN analyst.leads_explained.change_zh IS '最近一次运行的变化：新增 / 有变化 / 无变化';
COMMENT ON COLUMN analyst.leads_explained.change_detail IS '变化内容：与上次列出相比新增或不再出现的理由';
COMMENT ON COLUMN analyst.leads_explained.in_latest_list IS '是否出现在最近一次成功运行的线索清单中';
COMMENT ON COLUMN analyst.leads_explained.first_found_at IS '首次发现时间（首次列出该线索的运行开始时间，UTC）';
COMMENT ON COLUMN analyst.leads_explained.first_run_id IS '首次发现的运行号';
COMMENT ON COLUMN analyst.leads_explained.last_run_id IS '最近一次列出的运行号';
COMMENT ON COLUMN analyst.leads_explained.case_no IS '案号';
COMMENT ON COLUMN analyst.leads_explained.charge IS '罪名';
COMMENT ON COLUMN analyst.leads_explained.injury IS '伤情（死亡 / 重伤 / 轻伤 …）';
COMMENT ON COLUMN analyst.leads_explained.incident_date IS '案发日期';
COMMENT ON COLUMN analyst.leads_explained.unit IS '承办单位';
COMMENT ON COLUMN analyst.leads_explained.subject_role IS '救助对象身份：被害人 / 近亲属（被害人死亡或丧失劳动能力时为承担家庭负担的近亲属）';
COMMENT ON COLUMN analyst.leads_explained.subject_name IS '救助对象姓名';
COMMENT ON COLUMN analyst.leads_explained.id_masked IS '救助对象身份证号（脱敏：保留前6位和后4位）';
COMMENT ON COLUMN analyst.leads_explained.id_hmac IS '救助对象身份证号密钥散列（HMAC-SHA256，密钥不在数据库中）：同一号码得同一值，可用于关联，不能还原号码';
COMMENT ON COLUMN analyst.leads_explained.phone_masked IS '联系电话（脱敏：保留前3位和后4位）';
COMMENT ON COLUMN analyst.leads_explained.victim_name IS '被害人姓名';
COMMENT ON COLUMN analyst.leads_explained.reasons IS '线索理由（中文，含金额等数据，以“；”分隔）';
COMMENT ON COLUMN analyst.leads_explained.referrals IS '建议协同单位及理由（民政、残联、教育、妇联、人社；以“；”分隔，单位与理由以“：”分隔）';
COMMENT ON COLUMN analyst.leads_explained.aid_estimate IS '救助金额估算（一般不超过36个月当地平均工资，且不超过未获赔偿金额）';
COMMENT ON COLUMN analyst.leads_explained.evidence IS '同一人依据：各条记录为何被认定为同一人';
COMMENT ON COLUMN analyst.leads_explained.source_rows IS '来源行：所用每条记录的文件名和行号';
COMMENT ON COLUMN analyst.leads_explained.sources_hit IS '命中来源组合（victims, disability, subsistence, enforcement, key_groups，逗号分隔）';
COMMENT ON COLUMN analyst.leads_explained.priority_groups IS '重点群体（以“、”分隔）';
COMMENT ON COLUMN analyst.leads_explained.status_by IS '状态变更人';
COMMENT ON COLUMN analyst.leads_explained.status_at IS '状态变更时间（UTC）';
COMMENT ON COLUMN analyst.leads_explained.assigned_at IS '分派时间（UTC），工作日期限由此起算';
COMMENT ON COLUMN analyst.leads_explained.working_days_open IS '已用工作日：分派后至今的工作日数（不含周末；仅已分派、核查中的线索）；超过期限（默认7个工作日）即超期';
COMMENT ON COLUMN analyst.leads_explained.aid_amount IS '救助金额（元），随处理结果登记';
COMMENT ON COLUMN analyst.leads_explained.note IS '处理备注';
COMMENT ON COLUMN analyst.leads_explained.subject_person_id IS '救助对象人员号（关联 analyst.persons_with_records.person_id）';
COMMENT ON COLUMN analyst.leads_explained.victim_person_id IS '被害人人员号（关联 analyst.persons_with_records.person_id）';

CREATE OR REPLACE VIEW analyst.links_explained AS
SELECT k.record_id_l,
       k.record_id_r,
       m.person_id,
       p.id_hmac,
       k.method,
       CASE k.method WHEN 'id_exact' THEN '身份证号一致' WHEN 'id_typo' THEN '身份证号一位之差且姓名、出生日期一致'
                     WHEN 'probabilistic' THEN '加权比对（姓名、出生日期、性别、地区、电话、住址）'
                     WHEN 'case_context' THEN '案件关联（终本申请执行人与本案当事人同名，被执行人为本案被告人）'
                     ELSE k.method END AS method_zh,
       k.match_probability,
       k.match_weight,
       k.evidence_zh,
       a.source AS source_l,
       a.source_file AS file_l,
       a.row_number AS row_l,
       a.name AS name_l,
       CASE WHEN length(coalesce(a.id18, a.id_candidate)) > 10
            THEN left(coalesce(a.id18, a.id_candidate), 6) || repeat('*', length(coalesce(a.id18, a.id_candidate)) - 10)
                 || right(coalesce(a.id18, a.id_candidate), 4) END AS id_masked_l,
       a.id_status AS id_status_l,
       b.source AS source_r,
       b.source_file AS file_r,
       b.row_number AS row_r,
       b.name AS name_r,
       CASE WHEN length(coalesce(b.id18, b.id_candidate)) > 10
            THEN left(coalesce(b.id18, b.id_candidate), 6) || repeat('*', length(coalesce(b.id18, b.id_candidate)) - 10)
                 || right(coalesce(b.id18, b.id_candidate), 4) END AS id_masked_r,
       b.id_status AS id_status_r,
       k.name_level,
       k.id_level,
       k.birth_date_level,
       k.sex_level,
       k.region_level,
       k.phone_level,
       k.address_level,
       k.counterpart_level
FROM main.links k
JOIN main.person_records a ON a.record_id = k.record_id_l
JOIN main.person_records b ON b.record_id = k.record_id_r
LEFT JOIN main.person_members m ON m.record_id = k.record_id_l
LEFT JOIN main.persons p ON p.person_id = m.person_id;
COMMENT ON VIEW analyst.links_explained IS '关联（含说明）: one row per pair of records judged the same person — both records'' file and row, how and how sure, and why in Chinese';
COMMENT ON COLUMN analyst.links_explained.record_id_l IS '左记录号（较小者）';
COMMENT ON COLUMN analyst.links_explained.record_id_r IS '右记录号';
COMMENT ON COLUMN analyst.links_explained.person_id IS '两条记录所属的人员号';
COMMENT ON COLUMN analyst.links_explained.id_hmac IS '该人员身份证号密钥散列（HMAC-SHA256，密钥不在数据库中）';
COMMENT ON COLUMN analyst.links_explained.method IS '关联方式代码：id_exact / id_typo / probabilistic / case_context';
COMMENT ON COLUMN analyst.links_explained.method_zh IS '关联方式：身份证号一致 / 号码一位之差 / 加权比对 / 案件关联';
COMMENT ON COLUMN analyst.links_explained.match_probability IS '匹配概率（0–1）';
COMMENT ON COLUMN analyst.links_explained.match_weight IS '匹配权重（log2 贝叶斯因子，各字段权重与先验之和）';
COMMENT ON COLUMN analyst.links_explained.evidence_zh IS '关联依据（中文说明）';
COMMENT ON COLUMN analyst.links_explained.source_l IS '左记录来源：victims 刑事被害人 / disability 残疾人持证 / subsistence 低保特困 / enforcement 终本案件 / key_groups 重点人群';
COMMENT ON COLUMN analyst.links_explained.file_l IS '左记录源文件名';
COMMENT ON COLUMN analyst.links_explained.row_l IS '左记录行号（表格中显示的行号，表头为第1行）';
COMMENT ON COLUMN analyst.links_explained.name_l IS '左记录姓名（规范化后）';
COMMENT ON COLUMN analyst.links_explained.id_masked_l IS '左记录身份证号（脱敏：保留前6位和后4位；无号码为空）';
COMMENT ON COLUMN analyst.links_explained.id_status_l IS '左记录身份证号质量：valid 有效 / legacy15 15位旧号 / bad_check 校验位错 / bad_date 日期错 / damaged 损坏 / missing 缺失';
COMMENT ON COLUMN analyst.links_explained.source_r IS '右记录来源';
COMMENT ON COLUMN analyst.links_explained.file_r IS '右记录源文件名';
COMMENT ON COLUMN analyst.links_explained.row_r IS '右记录行号';
COMMENT ON COLUMN analyst.links_explained.name_r IS '右记录姓名（规范化后）';
COMMENT ON COLUMN analyst.links_explained.id_masked_r IS '右记录身份证号（脱敏）';
COMMENT ON COLUMN analyst.links_explained.id_status_r IS '右记录身份证号质量';
COMMENT ON COLUMN analyst.links_explained.name_level IS '姓名比对结果：exact 一致 / same_pinyin 同音 / one_char 一字之差 / transposed 颠倒 / different 不同 / missing 缺失';
COMMENT ON COLUMN analyst.links_explained.id_level IS '身份证号比对结果：agree 一致 / partial 一位之差 / disagree 不同 / missing 缺失';
COMMENT ON COLUMN analyst.links_explained.birth_date_level IS '出生日期比对结果：agree / partial / disagree / missing';
COMMENT ON COLUMN analyst.links_explained.sex_level IS '性别比对结果：agree / disagree / missing';
COMMENT ON COLUMN analyst.links_explained.region_level IS '地区比对结果：agree / partial / disagree / missing';
COMMENT ON COLUMN analyst.links_explained.phone_level IS '电话比对结果：agree / partial / disagree / missing';
COMMENT ON COLUMN analyst.links_explained.address_level IS '住址比对结果：agree / partial / disagree / missing';
COMMENT ON COLUMN analyst.links_explained.counterpart_level IS '对方当事人（被告人 / 被执行人）比对结果：agree / disagree / missing';

CREATE OR REPLACE VIEW analyst.persons_with_records AS
WITH enforcement AS (
    SELECT record_id, string_agg(enforcement_case_no, '、' ORDER BY enforcement_case_no) AS enforcement_case_nos,
           sum(amount_unpaid) AS amount_unpaid, max(termination_date) AS termination_date
    FROM main.enforcement_facts GROUP BY record_id
)
SELECT p.person_id,
       p.id_hmac,
       p.name AS person_name,
       p.sex AS person_sex,
       p.birth_date AS person_birth_date,
       p.n_records,
       p.sources,
       r.record_id,
       r.source,
       CASE r.source WHEN 'victims' THEN '刑事被害人' WHEN 'disability' THEN '残疾人持证' WHEN 'subsistence' THEN '低保特困'
                     WHEN 'enforcement' THEN '终本案件' WHEN 'key_groups' THEN '重点人群' ELSE r.source END AS source_zh,
       r.role,
       r.relation,
       r.source_file,
       r.row_number,
       r.name,
       r.id_status,
       CASE WHEN length(coalesce(r.id18, r.id_candidate)) > 10
            THEN left(coalesce(r.id18, r.id_candidate), 6) || repeat('*', length(coalesce(r.id18, r.id_candidate)) - 10)
                 || right(coalesce(r.id18, r.id_candidate), 4) END AS id_masked,
       r.birth_date,
       r.sex,
       r.region,
       r.case_no,
       e.evidence_zh AS link_evidence,
       v.charge,
       v.injury,
       v.incident_date,
       v.compensation_ordered,
       v.compensation_received,
       d.category AS disability_category,
       d.level AS disability_level,
       d.issue_date AS disability_issue_date,
       s.aid_type,
       s.monthly_amount,
       s.start_date AS aid_start_date,
       f.enforcement_case_nos,
       f.amount_unpaid,
       f.termination_date,
       g.group_name AS key_group,
       g.agency AS key_group_agency
FROM main.persons p
JOIN main.person_members m ON m.person_id = p.person_id
JOIN main.person_records r ON r.record_id = m.record_id
LEFT JOIN main.record_evidence e ON e.record_id = r.record_id
LEFT JOIN main.victim_facts v ON v.record_id = r.record_id
LEFT JOIN main.disability_facts d ON d.record_id = r.record_id
LEFT JOIN main.subsistence_facts s ON s.record_id = r.record_id
LEFT JOIN enforcement f ON f.record_id = r.record_id
LEFT JOIN main.key_group_facts g ON g.record_id = r.record_id;
COMMENT ON VIEW analyst.persons_with_records IS '人员及其全部记录: one row per person × record — who the person is (keyed hash, never the ID number) and what each agency''s record says';
COMMENT ON COLUMN analyst.persons_with_records.person_id IS '人员号（同一人的所有记录共用）';
COMMENT ON COLUMN analyst.persons_with_records.id_hmac IS '身份证号密钥散列（HMAC-SHA256，密钥不在数据库中）：同一号码得同一值，不能还原号码；无有效号码为空';
COMMENT ON COLUMN analyst.persons_with_records.person_name IS '人员姓名（各记录中最常见者）';
COMMENT ON COLUMN analyst.persons_with_records.person_sex IS '人员性别（各记录中最常见者）';
COMMENT ON COLUMN analyst.persons_with_records.person_birth_date IS '人员出生日期（各记录中最常见者）';
COMMENT ON COLUMN analyst.persons_with_records.n_records IS '该人员的记录数';
COMMENT ON COLUMN analyst.persons_with_records.sources IS '该人员出现的来源（逗号分隔）';
COMMENT ON COLUMN analyst.persons_with_records.record_id IS '记录号';
COMMENT ON COLUMN analyst.persons_with_records.source IS '记录来源代码：victims / disability / subsistence / enforcement / key_groups';
COMMENT ON COLUMN analyst.persons_with_records.source_zh IS '记录来源：刑事被害人 / 残疾人持证 / 低保特困 / 终本案件 / 重点人群';
COMMENT ON COLUMN analyst.persons_with_records.role IS '记录中的身份：victim 被害人 / relative 近亲属 / disability_holder 持证人 / subsistence_member 低保成员 / applicant 申请执行人 / key_group 重点人群';
COMMENT ON COLUMN analyst.persons_with_records.relation IS '与被害人或户主的关系（原文）';
COMMENT ON COLUMN analyst.persons_with_records.source_file IS '源文件名';
COMMENT ON COLUMN analyst.persons_with_records.row_number IS '行号（表格中显示的行号，表头为第1行）';
COMMENT ON COLUMN analyst.persons_with_records.name IS '记录中的姓名（规范化后）';
COMMENT ON COLUMN analyst.persons_with_records.id_status IS '记录中身份证号质量：valid 有效 / legacy15 15位旧号 / bad_check 校验位错 / bad_date 日期错 / damaged 损坏 / missing 缺失';
COMMENT ON COLUMN analyst.persons_with_records.id_masked IS '记录中身份证号（脱敏：保留前6位和后4位）';
COMMENT ON COLUMN analyst.persons_with_records.birth_date IS '记录中的出生日期';
COMMENT ON COLUMN analyst.persons_with_records.sex IS '记录中的性别';
COMMENT ON COLUMN analyst.persons_with_records.region IS '地区代码（身份证号前6位或住址推断）';
COMMENT ON COLUMN analyst.persons_with_records.case_no IS '案号（刑事被害人记录）';
COMMENT ON COLUMN analyst.persons_with_records.link_evidence IS '归入该人员的依据（最强关联的中文说明；单独一条记录为空）';
COMMENT ON COLUMN analyst.persons_with_records.charge IS '罪名（刑事被害人记录）';
COMMENT ON COLUMN analyst.persons_with_records.injury IS '伤情（刑事被害人记录）';
COMMENT ON COLUMN analyst.persons_with_records.incident_date IS '案发日期（刑事被害人记录）';
COMMENT ON COLUMN analyst.persons_with_records.compensation_ordered IS '判决赔偿金额（元）';
COMMENT ON COLUMN analyst.persons_with_records.compensation_received IS '已获赔偿金额（元）';
COMMENT ON COLUMN analyst.persons_with_records.disability_category IS '残疾类别（残疾人持证记录）';
COMMENT ON COLUMN analyst.persons_with_records.disability_level IS '残疾等级 1–4（1级最重）';
COMMENT ON COLUMN analyst.persons_with_records.disability_issue_date IS '残疾证发证日期';
COMMENT ON COLUMN analyst.persons_with_records.aid_type IS '救助类型：城市低保 / 农村低保 / 特困供养（低保特困记录）';
COMMENT ON COLUMN analyst.persons_with_records.monthly_amount IS '月保障金额（元）';
COMMENT ON COLUMN analyst.persons_with_records.aid_start_date IS '纳入低保/特困日期';
COMMENT ON COLUMN analyst.persons_with_records.enforcement_case_nos IS '执行案号（终本案件记录；多个以“、”分隔）';
COMMENT ON COLUMN analyst.persons_with_records.amount_unpaid IS '未执行金额合计（元，终本案件记录）';
COMMENT ON COLUMN analyst.persons_with_records.termination_date IS '终结本次执行日期（最近者）';
COMMENT ON COLUMN analyst.persons_with_records.key_group IS '重点人群类别（防止返贫监测对象、退役军人、事实无人抚养儿童 …）';
COMMENT ON COLUMN analyst.persons_with_records.key_group_agency IS '重点人群报送单位';

CREATE OR REPLACE VIEW analyst.quarterly_figures AS
SELECT strftime(r.started_at, '%Y') || 'Q' || quarter(r.started_at) AS quarter,
       l.tier,
       l.status,
       CASE l.status WHEN 'new' THEN '待分派' WHEN 'assigned' THEN '已分派' WHEN 'verifying' THEN '核查中'
                     WHEN 'aided' THEN '已救助' WHEN 'not_eligible' THEN '不符合条件' WHEN 'referred' THEN '已移送'
                     WHEN 'closed' THEN '已办结' ELSE l.status END AS status_zh,
       count(*) AS leads,
       count(l.aid_amount) AS leads_with_amount,
       coalesce(sum(l.aid_amount), 0) AS aid_amount
FROM main.leads l
JOIN main.runs r ON r.run_id = l.first_run_id
GROUP BY ALL;
COMMENT ON VIEW analyst.quarterly_figures IS '季度数据: leads by the quarter they were first found × tier × current status, with the aid amounts recorded (aidleads report gives the 每季度通报 by the quarter of each outcome)';
COMMENT ON COLUMN analyst.quarterly_figures.quarter IS '季度（首次发现线索的运行开始时间，UTC；如 2026Q4）';
COMMENT ON COLUMN analyst.quarterly_figures.tier IS '优先级 A / B / C（最近一次）';
COMMENT ON COLUMN analyst.quarterly_figures.status IS '当前处理状态代码';
COMMENT ON COLUMN analyst.quarterly_figures.status_zh IS '当前处理状态：待分派 / 已分派 / 核查中 / 已救助 / 不符合条件 / 已移送 / 已办结';
COMMENT ON COLUMN analyst.quarterly_figures.leads IS '线索数';
COMMENT ON COLUMN analyst.quarterly_figures.leads_with_amount IS '已登记救助金额的线索数';
COMMENT ON COLUMN analyst.quarterly_figures.aid_amount IS '救助金额合计（元）';

CREATE OR REPLACE VIEW analyst.run_history AS
SELECT r.run_id,
       r.started_at,
       r.finished_at,
       date_diff('second', r.started_at, r.finished_at) AS seconds,
       r.status,
       CASE r.status WHEN 'succeeded' THEN '成功' WHEN 'failed' THEN '失败' WHEN 'running' THEN '运行中（或被中断）'
                     ELSE r.status END AS status_zh,
       r.message,
       coalesce(sum(c.value) FILTER (WHERE c.metric = 'files_loaded'), 0) AS files_loaded,
       coalesce(sum(c.value) FILTER (WHERE c.metric = 'files_skipped'), 0) AS files_skipped,
       coalesce(sum(c.value) FILTER (WHERE c.metric = 'files_rejected'), 0) AS files_rejected,
       coalesce(sum(c.value) FILTER (WHERE c.metric = 'rows_loaded'), 0) AS rows_loaded,
       coalesce(sum(c.value) FILTER (WHERE c.metric = 'rows_quarantined'), 0) AS rows_quarantined,
       coalesce(sum(c.value) FILTER (WHERE c.stage = 'normalise' AND c.metric = 'person_records'), 0) AS person_records,
       coalesce(sum(c.value) FILTER (WHERE c.stage = 'resolve' AND c.metric = 'persons'), 0) AS persons,
       coalesce(sum(c.value) FILTER (WHERE c.stage = 'resolve' AND c.metric = 'links'), 0) AS links,
       coalesce(sum(c.value) FILTER (WHERE c.metric = 'leads' AND c.subject = 'A'), 0) AS leads_a,
       coalesce(sum(c.value) FILTER (WHERE c.metric = 'leads' AND c.subject = 'B'), 0) AS leads_b,
       coalesce(sum(c.value) FILTER (WHERE c.metric = 'leads' AND c.subject = 'C'), 0) AS leads_c,
       coalesce(sum(c.value) FILTER (WHERE c.metric = 'leads_change' AND c.subject = 'new'), 0) AS leads_new,
       coalesce(sum(c.value) FILTER (WHERE c.metric = 'leads_change' AND c.subject = 'changed'), 0) AS leads_changed,
       coalesce(sum(c.value) FILTER (WHERE c.metric = 'leads_change' AND c.subject = 'unchanged'), 0) AS leads_unchanged
FROM main.runs r
LEFT JOIN main.run_counts c ON c.run_id = r.run_id
GROUP BY r.run_id, r.started_at, r.finished_at, r.status, r.message;
COMMENT ON VIEW analyst.run_history IS '运行记录: one row per nightly run — when, how long, outcome, and its counts (no personal data)';
COMMENT ON COLUMN analyst.run_history.run_id IS '运行号';
COMMENT ON COLUMN analyst.run_history.started_at IS '开始时间（UTC）';
COMMENT ON COLUMN analyst.run_history.finished_at IS '结束时间（UTC）';
COMMENT ON COLUMN analyst.run_history.seconds IS '用时（秒）';
COMMENT ON COLUMN analyst.run_history.status IS '结果代码：succeeded / failed / running';
COMMENT ON COLUMN analyst.run_history.status_zh IS '结果：成功 / 失败 / 运行中（或被中断）';
COMMENT ON COLUMN analyst.run_history.message IS '失败原因（不含个人信息）';
COMMENT ON COLUMN analyst.run_history.files_loaded IS '本次导入的文件数';
COMMENT ON COLUMN analyst.run_history.files_skipped IS '内容未变而跳过的文件数';
COMMENT ON COLUMN analyst.run_history.files_rejected IS '拒收的文件数（如缺少必填列）';
COMMENT ON COLUMN analyst.run_history.rows_loaded IS '本次入库行数';
COMMENT ON COLUMN analyst.run_history.rows_quarantined IS '本次隔离行数';
COMMENT ON COLUMN analyst.run_history.person_records IS '人员记录数（现行文件）';
COMMENT ON COLUMN analyst.run_history.persons IS '识别出的人员数';
COMMENT ON COLUMN analyst.run_history.links IS '关联数（各关联方式合计）';
COMMENT ON COLUMN analyst.run_history.leads_a IS 'A级线索数';
COMMENT ON COLUMN analyst.run_history.leads_b IS 'B级线索数';
COMMENT ON COLUMN analyst.run_history.leads_c IS 'C级线索数';
COMMENT ON COLUMN analyst.run_history.leads_new IS '新增线索数';
COMMENT ON COLUMN analyst.run_history.leads_changed IS '有变化的线索数';
COMMENT ON COLUMN analyst.run_history.leads_unchanged IS '无变化的线索数';

CREATE OR REPLACE VIEW analyst.file_quality AS
WITH records AS (
    SELECT r.file_id, r.id_status, count(*) OVER (PARTITION BY m.person_id) AS person_records
    FROM main.person_records r JOIN main.person_members m USING (record_id)
),
per_file AS (
    SELECT file_id,
           count(*) FILTER (WHERE id_status = 'valid') AS ids_valid,
           count(*) FILTER (WHERE id_status = 'legacy15') AS ids_legacy15,
           count(*) FILTER (WHERE id_status IN ('bad_check', 'bad_date')) AS ids_wrong,
           count(*) FILTER (WHERE id_status = 'damaged') AS ids_damaged,
           count(*) FILTER (WHERE id_status = 'missing') AS ids_missing,
           count(*) FILTER (WHERE person_records = 1) AS records_unmatched
    FROM records GROUP BY file_id
),
issues AS (SELECT file_id, count(*) AS n FROM main.field_issues GROUP BY file_id)
SELECT f.file_id,
       f.source,
       CASE f.source WHEN 'victims' THEN '刑事被害人' WHEN 'disability' THEN '残疾人持证' WHEN 'subsistence' THEN '低保特困'
                     WHEN 'enforcement' THEN '终本案件' WHEN 'key_groups' THEN '重点人群' ELSE f.source END AS source_zh,
       f.file_name,
       f.sheet,
       f.status,
       f.encoding,
       f.header_row,
       f.rows_read,
       f.rows_loaded,
       f.rows_quarantined,
       f.rows_blank,
       coalesce(i.n, 0) AS field_issues,
       coalesce(q.ids_valid, 0) AS ids_valid,
       coalesce(q.ids_legacy15, 0) AS ids_legacy15,
       coalesce(q.ids_wrong, 0) AS ids_wrong,
       coalesce(q.ids_damaged, 0) AS ids_damaged,
       coalesce(q.ids_missing, 0) AS ids_missing,
       coalesce(q.records_unmatched, 0) AS records_unmatched,
       f.error,
       f.run_id,
       f.ingested_at
FROM main.ingested_files f
LEFT JOIN per_file q ON q.file_id = f.file_id
LEFT JOIN issues i ON i.file_id = f.file_id;
COMMENT ON VIEW analyst.file_quality IS '数据质量（按文件）: one row per file (per sheet for workbooks) and content version — what each agency should fix';
COMMENT ON COLUMN analyst.file_quality.file_id IS '文件号';
COMMENT ON COLUMN analyst.file_quality.source IS '来源代码';
COMMENT ON COLUMN analyst.file_quality.source_zh IS '来源：刑事被害人 / 残疾人持证 / 低保特困 / 终本案件 / 重点人群';
COMMENT ON COLUMN analyst.file_quality.file_name IS '文件名';
COMMENT ON COLUMN analyst.file_quality.sheet IS '工作表名（仅工作簿）';
COMMENT ON COLUMN analyst.file_quality.status IS '状态：loaded 已导入 / rejected 拒收 / superseded 已被同路径新版本取代';
COMMENT ON COLUMN analyst.file_quality.encoding IS '文本编码（仅CSV）';
COMMENT ON COLUMN analyst.file_quality.header_row IS '表头所在行';
COMMENT ON COLUMN analyst.file_quality.rows_read IS '数据行数（表头以下，含空行）';
COMMENT ON COLUMN analyst.file_quality.rows_loaded IS '入库行数';
COMMENT ON COLUMN analyst.file_quality.rows_quarantined IS '隔离行数（缺少必填字段或单元格过长）';
COMMENT ON COLUMN analyst.file_quality.rows_blank IS '空行数';
COMMENT ON COLUMN analyst.file_quality.field_issues IS '无法识读的字段值个数（行已入库，该值留空）';
COMMENT ON COLUMN analyst.file_quality.ids_valid IS '身份证号有效的记录数';
COMMENT ON COLUMN analyst.file_quality.ids_legacy15 IS '15位旧身份证号的记录数';
COMMENT ON COLUMN analyst.file_quality.ids_wrong IS '身份证号错误（校验位或日期错）的记录数';
COMMENT ON COLUMN analyst.file_quality.ids_damaged IS '身份证号损坏（如被Excel转为科学计数法）的记录数';
COMMENT ON COLUMN analyst.file_quality.ids_missing IS '缺少身份证号的记录数';
COMMENT ON COLUMN analyst.file_quality.records_unmatched IS '未与任何其他记录关联的记录数';
COMMENT ON COLUMN analyst.file_quality.error IS '拒收原因';
COMMENT ON COLUMN analyst.file_quality.run_id IS '导入该文件的运行号';
COMMENT ON COLUMN analyst.file_quality.ingested_at IS '导入时间（UTC）';
