"""Suite for ``settlements``: one row per visit, stay or pharmacy purchase.

Keys, enumerations, money identities, date order and the extract date are checked by GX
on every batch; uniqueness within the night and against earlier nights, references and
volume against history are checked by DuckDB (see ``CHECKS``).
"""
from __future__ import annotations

import great_expectations as gx
from great_expectations.expectations.row_conditions import Column

from pipeline import contract
from expectations._suite import Check, rule

E = gx.expectations
TABLE = "settlements"
KEY = ("settlement_id",)

# Money as DOUBLE (the identities below are checked on exact DECIMAL differences, so no
# float rounding enters a verdict); derived columns are the facts the rules compare.
BATCH_SQL = """
SELECT * REPLACE (
           CAST(total_amount AS DOUBLE) AS total_amount,
           CAST(fund_paid AS DOUBLE) AS fund_paid,
           CAST(self_paid AS DOUBLE) AS self_paid),
       reversal_of IS NOT NULL                               AS is_reversal,
       CAST(total_amount - fund_paid - self_paid AS DOUBLE)  AS money_gap,
       CAST($extract_date AS DATE)                           AS extract_date
FROM new_settlements
"""

_REQUIRED = [f.name for f in contract.SETTLEMENTS if not f.nullable and f.name != "settlement_id"]
_NOT_REVERSAL = Column("is_reversal") == False  # noqa: E712 (a GX condition, not a Python test)
_REVERSAL = Column("is_reversal") == True  # noqa: E712
_STAY = Column("visit_type") == "inpatient"


def _when(condition):
    return {"row_condition": condition}


def rules(cfg, extract_date: str):
    cents = cfg.tolerance("money_cents") / 100
    return [
        rule("columns_present", "MISSING_COLUMN", "Every contract column present", "合同字段齐全",
             E.ExpectTableColumnsToMatchSet(column_set=list(contract.SETTLEMENTS.names), exact_match=False)),
        rule("settlement_id_not_null", "NULL_KEY", "Settlement id present", "结算ID不为空",
             E.ExpectColumnValuesToNotBeNull(column="settlement_id")),
        rule("required_not_null", "NULL_REQUIRED", "Required columns present", "必填字段不为空",
             *[E.ExpectColumnValuesToNotBeNull(column=c) for c in _REQUIRED]),
        rule("visit_type_known", "UNKNOWN_ENUM", "Visit type is a contract value", "就诊类型为合法值",
             E.ExpectColumnValuesToBeInSet(column="visit_type", value_set=list(contract.VISIT_TYPES))),
        rule("insurance_type_known", "UNKNOWN_ENUM", "Insurance type is a contract value", "险种为合法值",
             E.ExpectColumnValuesToBeInSet(column="insurance_type", value_set=list(contract.INSURANCE_TYPES))),
        rule("settle_region_format", "BAD_REGION_CODE", "Settlement region is a 6-digit division code",
             "结算区划为6位行政区划代码",
             E.ExpectColumnValuesToMatchRegex(column="settle_region", regex=r"^\d{6}$")),
        rule("total_is_fund_plus_self", "TOTAL_NE_FUND_PLUS_SELF",
             "Total = fund paid + self paid (within tolerance)", "总金额=统筹支付+个人支付",
             E.ExpectColumnValuesToBeBetween(column="money_gap", min_value=-cents, max_value=cents)),
        rule("fund_not_above_total", "FUND_ABOVE_TOTAL", "Fund paid not above total", "统筹支付不超过总金额",
             E.ExpectColumnPairValuesAToBeGreaterThanB(column_A="total_amount", column_B="fund_paid",
                                                       or_equal=True, **_when(_NOT_REVERSAL))),
        rule("amounts_not_negative", "NEGATIVE_AMOUNT", "No negative amount outside a reversal",
             "非冲销结算金额不为负",
             *[E.ExpectColumnValuesToBeBetween(column=c, min_value=0, **_when(_NOT_REVERSAL))
               for c in ("total_amount", "fund_paid", "self_paid")]),
        rule("reversal_amounts_not_positive", "REVERSAL_POSITIVE_AMOUNT",
             "A reversal carries negative (or zero) amounts", "冲销结算金额不为正",
             *[E.ExpectColumnValuesToBeBetween(column=c, max_value=0, **_when(_REVERSAL))
               for c in ("total_amount", "fund_paid")]),
        rule("discharge_not_before_admit", "DISCHARGE_BEFORE_ADMIT", "Discharge on or after admission",
             "出院日期不早于入院日期",
             E.ExpectColumnPairValuesAToBeGreaterThanB(column_A="discharge_date", column_B="admit_date",
                                                       or_equal=True, ignore_row_if="either_value_is_missing")),
        rule("stay_has_discharge", "STAY_WITHOUT_DISCHARGE", "An inpatient settlement has a discharge date",
             "住院结算有出院日期",
             E.ExpectColumnValuesToNotBeNull(column="discharge_date", **_when(_STAY))),
        rule("settle_not_before_admit", "SETTLED_BEFORE_ADMIT", "Settled on or after admission",
             "结算日期不早于入院日期",
             E.ExpectColumnPairValuesAToBeGreaterThanB(column_A="settle_date", column_B="admit_date",
                                                       or_equal=True, ignore_row_if="either_value_is_missing")),
        rule("settle_date_is_extract_date", "SETTLE_DATE_NOT_EXTRACT_DATE",
             "A new settlement is settled on the extract date", "新结算的结算日期即抽取日期",
             E.ExpectColumnPairValuesToBeEqual(column_A="settle_date", column_B="extract_date",
                                               ignore_row_if="either_value_is_missing")),
        rule("no_future_dates", "FUTURE_DATE", "No date after the extract date", "日期不晚于抽取日期",
             *[E.ExpectColumnPairValuesAToBeGreaterThanB(column_A="extract_date", column_B=c, or_equal=True,
                                                         ignore_row_if="either_value_is_missing")
               for c in ("admit_date", "discharge_date")]),
    ]


def _volume(cfg):
    lo, hi = cfg.volume("band")
    return {"lo": lo, "hi": hi, "min_history": cfg.volume("min_history")}


CHECKS = [
    # Empty is refused when the feed normally delivers: a failed export. A tiny world (a
    # pilot county, a test fixture) may settle nothing on a day, and a first delivery may
    # carry only the reference snapshots: those pass with the extract_has_rows warning.
    Check("extract_not_empty", "EMPTY_EXTRACT",
          "The extract holds settlements (the feed usually delivers)", "抽取包含结算记录",
          "WITH nightly AS (SELECT extract_date, sum(n_settlements) AS n FROM volume_history GROUP BY 1), "
          "med AS (SELECT coalesce(median(n), 0) AS median_settlements, count(*) AS nights FROM nightly) "
          "SELECT (SELECT count(*) FROM {batch}) AS settlements, median_settlements, nights FROM med "
          "WHERE (SELECT count(*) FROM {batch}) = 0 AND nights > 0 AND median_settlements >= $min_median",
          params=lambda cfg: {"min_median": cfg.volume("empty_blocks_from_median")}, scope="extract"),
    Check("extract_has_rows", "EMPTY_EXTRACT", "The extract holds settlements", "抽取包含结算记录",
          "SELECT count(*) AS settlements FROM {batch} HAVING count(*) = 0", scope="extract"),
    Check("settlement_id_unique_in_extract", "DUPLICATE_SETTLEMENT_ID",
          "Settlement id unique within the extract", "结算ID在本次抽取内唯一",
          "SELECT settlement_id, count(*) AS copies FROM {batch} "
          "WHERE settlement_id IS NOT NULL GROUP BY settlement_id HAVING count(*) > 1"),
    Check("settlement_id_not_delivered_before", "ALREADY_DELIVERED",
          "Settlement id not delivered by an earlier extract", "结算ID未在以往抽取中出现",
          "SELECT n.settlement_id, min(p.extract_date) AS first_delivered "
          "FROM {batch} AS n JOIN prior_settlements AS p USING (settlement_id) GROUP BY n.settlement_id"),
    Check("patient_known", "UNKNOWN_PATIENT", "Patient is an insured person", "参保人存在",
          "SELECT n.settlement_id, n.patient_id FROM {batch} AS n "
          "ANTI JOIN ref_insured_persons AS r USING (patient_id) WHERE n.patient_id IS NOT NULL"),
    Check("institution_known", "UNKNOWN_INSTITUTION", "Institution is a designated institution",
          "定点机构存在",
          "SELECT n.settlement_id, n.institution_id FROM {batch} AS n "
          "ANTI JOIN ref_institutions AS r USING (institution_id) WHERE n.institution_id IS NOT NULL"),
    Check("doctor_known", "UNKNOWN_DOCTOR", "Doctor is a registered practitioner", "医师存在",
          "SELECT n.settlement_id, n.doctor_id FROM {batch} AS n "
          "ANTI JOIN ref_practitioners AS r USING (doctor_id) WHERE n.doctor_id IS NOT NULL"),
    Check("reversal_names_known_settlement", "REVERSAL_OF_UNKNOWN",
          "A reversal names a settlement that exists", "冲销对应的原结算存在",
          "SELECT n.settlement_id, n.reversal_of FROM {batch} AS n "
          "WHERE n.reversal_of IS NOT NULL "
          "AND n.reversal_of NOT IN (SELECT settlement_id FROM prior_settlements WHERE reversal_of IS NULL) "
          "AND n.reversal_of NOT IN (SELECT settlement_id FROM {batch} "
          "                          WHERE reversal_of IS NULL AND settlement_id IS NOT NULL)"),
    Check("settlement_has_lines", "NO_LINES", "A settlement has its charge lines in the extract",
          "结算在本次抽取中有费用明细",
          "SELECT s.settlement_id FROM {batch} AS s "
          "ANTI JOIN new_settlement_items AS i USING (settlement_id) WHERE s.settlement_id IS NOT NULL"),
    # a settlement is refunded once: a second reversal (tonight or in a promoted night)
    # would cancel the money twice; every reversal of tonight naming an original that is
    # reversed more than once is held (nothing says which one is right)
    Check("reversal_not_repeated", "REVERSAL_REPEATED", "A settlement is reversed at most once",
          "同一结算至多冲销一次",
          "SELECT n.settlement_id, n.reversal_of FROM {batch} AS n "
          "WHERE n.reversal_of IS NOT NULL AND n.settlement_id IS NOT NULL "
          "AND (n.reversal_of IN (SELECT reversal_of FROM prior_settlements WHERE reversal_of IS NOT NULL) "
          "  OR n.reversal_of IN (SELECT reversal_of FROM {batch} WHERE reversal_of IS NOT NULL "
          "                       GROUP BY reversal_of HAVING count(*) > 1))"),
    Check("volume_rows_in_band", "VOLUME_OUT_OF_BAND",
          "Settlement count within the band of the trailing median", "结算笔数在近期中位数区间内",
          "WITH nightly AS (SELECT extract_date, sum(n_settlements) AS n FROM volume_history GROUP BY 1), "
          "med AS (SELECT median(n) AS median_settlements, count(*) AS nights FROM nightly), "
          "tonight AS (SELECT count(*) AS settlements_tonight FROM {batch}) "
          "SELECT settlements_tonight, median_settlements, nights FROM tonight, med "
          "WHERE nights >= $min_history AND (settlements_tonight < $lo * median_settlements "
          "                                   OR settlements_tonight > $hi * median_settlements)",
          params=_volume, scope="extract"),
    Check("volume_fund_in_band", "VOLUME_OUT_OF_BAND",
          "Fund total within the band of the trailing median", "统筹支付总额在近期中位数区间内",
          "WITH nightly AS (SELECT extract_date, sum(fund_paid) AS f FROM volume_history GROUP BY 1), "
          "med AS (SELECT median(f) AS median_fund, count(*) AS nights FROM nightly), "
          "tonight AS (SELECT coalesce(sum(fund_paid), 0) AS fund_tonight FROM {batch}) "
          "SELECT fund_tonight, median_fund, nights FROM tonight, med "
          "WHERE nights >= $min_history AND (fund_tonight < $lo * median_fund "
          "                                   OR fund_tonight > $hi * median_fund)",
          params=_volume, scope="extract"),
    Check("institution_volume_surge", "INSTITUTION_SURGE",
          "No institution bills far above its usual nightly volume", "机构单日结算量无异常激增",
          "WITH nightly AS (SELECT extract_date, institution_id, sum(n_settlements) AS n, "
          "                        sum(fund_paid) AS f FROM volume_history GROUP BY 1, 2), "
          "hist AS (SELECT institution_id, median(n) AS median_settlements, median(f) AS median_fund, "
          "                count(*) AS nights FROM nightly GROUP BY 1), "
          "tonight AS (SELECT institution_id, count(*) AS settlements_tonight, "
          "                   sum(fund_paid) AS fund_tonight FROM {batch} GROUP BY 1) "
          "SELECT t.institution_id, t.settlements_tonight, h.median_settlements, t.fund_tonight, "
          "       h.median_fund, h.nights "
          "FROM tonight AS t JOIN hist AS h USING (institution_id) "
          "WHERE h.nights >= $min_history AND t.settlements_tonight >= $min_settlements "
          "  AND t.settlements_tonight > $factor * h.median_settlements "
          "ORDER BY t.settlements_tonight / h.median_settlements DESC",
          params=lambda cfg: {"min_history": cfg.volume("min_history"),
                              "min_settlements": cfg.volume("institution_min_settlements"),
                              "factor": cfg.volume("institution_surge_factor")},
          scope="extract"),
    Check("region_volume_drop", "REGION_DROP",
          "No settlement region drops far below its usual nightly volume", "统筹区结算量无异常骤降",
          "WITH nightly AS (SELECT extract_date, settle_region, sum(n_settlements) AS n "
          "                 FROM volume_history GROUP BY 1, 2), "
          "hist AS (SELECT settle_region, median(n) AS median_settlements, count(*) AS nights "
          "         FROM nightly GROUP BY 1), "
          "tonight AS (SELECT settle_region, count(*) AS n FROM {batch} GROUP BY 1) "
          "SELECT h.settle_region, coalesce(t.n, 0) AS settlements_tonight, h.median_settlements "
          "FROM hist AS h LEFT JOIN tonight AS t USING (settle_region) "
          "WHERE h.nights >= $min_history AND h.median_settlements >= $min_median "
          "  AND coalesce(t.n, 0) < $factor * h.median_settlements "
          "ORDER BY h.settle_region",
          params=lambda cfg: {"min_history": cfg.volume("min_history"),
                              "min_median": cfg.volume("region_min_median"),
                              "factor": cfg.volume("region_drop_factor")},
          scope="extract"),
]
