"""Suite for the ``catalog`` reference snapshot (when the extract carries one)."""
from __future__ import annotations

import great_expectations as gx

from pipeline import contract
from expectations._suite import Check, rule

E = gx.expectations
TABLE = "catalog"
KEY = ("item_code",)

BATCH_SQL = """
SELECT * REPLACE (
           CAST(price_cap_l3 AS DOUBLE) AS price_cap_l3,
           CAST(price_cap_l2 AS DOUBLE) AS price_cap_l2,
           CAST(price_cap_l1 AS DOUBLE) AS price_cap_l1,
           CAST(max_daily_qty AS DOUBLE) AS max_daily_qty,
           CAST(hours_per_unit AS DOUBLE) AS hours_per_unit),
       CAST($extract_date AS DATE) AS extract_date
FROM new_catalog
"""

_REQUIRED = [f.name for f in contract.CATALOG if not f.nullable and f.name not in KEY]


def rules(cfg, extract_date: str):
    return [
        rule("columns_present", "MISSING_COLUMN", "Every contract column present", "合同字段齐全",
             E.ExpectTableColumnsToMatchSet(column_set=list(contract.CATALOG.names), exact_match=False)),
        rule("item_code_not_null", "NULL_KEY", "Item code present", "项目编码不为空",
             E.ExpectColumnValuesToNotBeNull(column="item_code")),
        rule("required_not_null", "NULL_REQUIRED", "Required columns present", "必填字段不为空",
             *[E.ExpectColumnValuesToNotBeNull(column=c) for c in _REQUIRED]),
        rule("category_known", "UNKNOWN_ENUM", "Category is a contract value", "项目类别为合法值",
             E.ExpectColumnValuesToBeInSet(column="category", value_set=list(contract.ITEM_CATEGORIES))),
        rule("sex_only_known", "UNKNOWN_ENUM", "Sex restriction is M or F", "性别限定为合法值",
             E.ExpectColumnValuesToBeInSet(column="sex_only", value_set=list(contract.SEXES))),
        rule("price_caps_not_negative", "NEGATIVE_AMOUNT", "Price caps not negative", "限价不为负",
             *[E.ExpectColumnValuesToBeBetween(column=c, min_value=0)
               for c in ("price_cap_l3", "price_cap_l2", "price_cap_l1")]),
        rule("age_range_ordered", "AGE_RANGE_REVERSED", "Minimum age not above maximum age",
             "最小年龄不大于最大年龄",
             E.ExpectColumnPairValuesAToBeGreaterThanB(column_A="max_age", column_B="min_age",
                                                       or_equal=True, ignore_row_if="either_value_is_missing")),
    ]


CHECKS = [
    Check("item_code_unique", "DUPLICATE_KEY", "Item code unique in the snapshot", "项目编码唯一",
          "SELECT item_code, count(*) AS copies FROM {batch} WHERE item_code IS NOT NULL "
          "GROUP BY 1 HAVING count(*) > 1"),
]
