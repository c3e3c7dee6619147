"""Suite for ``settlement_items``: one row per charge line.

Each batch carries the facts of the line's settlement (reversal or not, the stay's
dates widened by the configured tolerance) so GX can check a line against its stay.
A failing line holds back its whole settlement (see pipeline/validate.py).
"""
from __future__ import annotations

import great_expectations as gx
from great_expectations.expectations.row_conditions import Column

from pipeline import contract
from expectations._suite import Check, rule

E = gx.expectations
TABLE = "settlement_items"
KEY = ("settlement_id", "line_no")

BATCH_SQL = """
WITH parent AS (
    SELECT settlement_id,
           bool_or(reversal_of IS NOT NULL)                  AS is_reversal,
           any_value(visit_type)                             AS visit_type,
           any_value(admit_date)                             AS admit_date,
           any_value(discharge_date)                         AS discharge_date
    FROM new_settlements
    GROUP BY settlement_id
)
SELECT i.* REPLACE (
           CAST(i.line_no AS BIGINT) AS line_no,
           CAST(i.quantity AS DOUBLE) AS quantity,
           CAST(i.unit_price AS DOUBLE) AS unit_price,
           CAST(i.amount AS DOUBLE) AS amount,
           CAST(i.fund_eligible_amount AS DOUBLE) AS fund_eligible_amount),
       coalesce(p.is_reversal, false)                        AS is_reversal,
       CASE WHEN p.visit_type = 'inpatient'
            THEN CAST(p.admit_date - CAST($service_days AS INTEGER) AS DATE) END      AS stay_from,
       CASE WHEN p.visit_type = 'inpatient'
            THEN CAST(p.discharge_date + CAST($service_days AS INTEGER) AS DATE) END  AS stay_to,
       CAST(i.amount - round(i.quantity * i.unit_price, 2) AS DOUBLE)                 AS amount_gap,
       CAST($extract_date AS DATE)                                                     AS extract_date
FROM new_settlement_items AS i
LEFT JOIN parent AS p USING (settlement_id)
"""


def batch_params(cfg) -> dict:
    return {"service_days": int(cfg.tolerance("service_date_days"))}


_REQUIRED = [f.name for f in contract.SETTLEMENT_ITEMS if not f.nullable and f.name not in KEY]
_NOT_REVERSAL = Column("is_reversal") == False  # noqa: E712 (a GX condition)


def rules(cfg, extract_date: str):
    cents = cfg.tolerance("amount_cents") / 100
    when = {"row_condition": _NOT_REVERSAL}
    return [
        rule("columns_present", "MISSING_COLUMN", "Every contract column present", "合同字段齐全",
             E.ExpectTableColumnsToMatchSet(column_set=list(contract.SETTLEMENT_ITEMS.names), exact_match=False)),
        rule("key_not_null", "NULL_KEY", "Settlement id and line number present", "结算ID与明细行号不为空",
             *[E.ExpectColumnValuesToNotBeNull(column=c) for c in KEY]),
        rule("required_not_null", "NULL_REQUIRED", "Required columns present", "必填字段不为空",
             *[E.ExpectColumnValuesToNotBeNull(column=c) for c in _REQUIRED]),
        rule("item_category_known", "UNKNOWN_ENUM", "Item category is a contract value", "项目类别为合法值",
             E.ExpectColumnValuesToBeInSet(column="item_category", value_set=list(contract.ITEM_CATEGORIES))),
        rule("line_no_positive", "BAD_LINE_NO", "Line numbers start at 1", "明细行号从1开始",
             E.ExpectColumnValuesToBeBetween(column="line_no", min_value=1)),
        rule("amounts_not_negative", "NEGATIVE_AMOUNT", "No negative quantity or amount outside a reversal",
             "非冲销明细数量与金额不为负",
             *[E.ExpectColumnValuesToBeBetween(column=c, min_value=0, **when)
               for c in ("quantity", "amount", "fund_eligible_amount")]),
        rule("amount_is_quantity_times_price", "AMOUNT_NE_QTY_X_PRICE",
             "Amount = quantity x unit price (within tolerance)", "金额=数量×单价",
             E.ExpectColumnValuesToBeBetween(column="amount_gap", min_value=-cents, max_value=cents)),
        rule("eligible_not_above_amount", "ELIGIBLE_ABOVE_AMOUNT", "Fund-eligible part not above the amount",
             "符合统筹部分不超过金额",
             E.ExpectColumnPairValuesAToBeGreaterThanB(column_A="amount", column_B="fund_eligible_amount",
                                                       or_equal=True, **when)),
        rule("no_future_service_date", "FUTURE_DATE", "Service date not after the extract date",
             "服务日期不晚于抽取日期",
             E.ExpectColumnPairValuesAToBeGreaterThanB(column_A="extract_date", column_B="service_date",
                                                       or_equal=True, ignore_row_if="either_value_is_missing")),
        rule("service_date_inside_stay", "SERVICE_OUTSIDE_STAY",
             "An inpatient charge lies inside the stay (within tolerance)", "住院明细服务日期在住院期间内",
             E.ExpectColumnPairValuesAToBeGreaterThanB(column_A="service_date", column_B="stay_from",
                                                       or_equal=True, ignore_row_if="either_value_is_missing"),
             E.ExpectColumnPairValuesAToBeGreaterThanB(column_A="stay_to", column_B="service_date",
                                                       or_equal=True, ignore_row_if="either_value_is_missing")),
    ]


CHECKS = [
    Check("line_unique_in_extract", "DUPLICATE_LINE", "(settlement id, line number) unique",
          "(结算ID, 行号)唯一",
          "SELECT settlement_id, line_no, count(*) AS copies FROM {batch} "
          "WHERE settlement_id IS NOT NULL AND line_no IS NOT NULL "
          "GROUP BY settlement_id, line_no HAVING count(*) > 1"),
    Check("item_has_settlement", "DANGLING_ITEM", "A charge line belongs to a settlement of the extract",
          "明细对应本次抽取中的结算",
          "SELECT i.settlement_id, i.line_no FROM {batch} AS i "
          "ANTI JOIN new_settlements AS s USING (settlement_id) WHERE i.settlement_id IS NOT NULL"),
    Check("item_code_known", "UNKNOWN_ITEM_CODE", "Item code is in the catalog", "项目编码在目录中",
          "SELECT i.settlement_id, i.line_no, i.item_code FROM {batch} AS i "
          "ANTI JOIN ref_catalog AS c USING (item_code) WHERE i.item_code IS NOT NULL"),
    Check("ordering_doctor_known", "UNKNOWN_DOCTOR", "Ordering doctor is a registered practitioner",
          "开单医师存在",
          "SELECT i.settlement_id, i.line_no, i.ordering_doctor_id FROM {batch} AS i "
          "ANTI JOIN ref_practitioners AS r ON r.doctor_id = i.ordering_doctor_id "
          "WHERE i.ordering_doctor_id IS NOT NULL"),
]
