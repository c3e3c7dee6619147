"""Suite for the ``practitioners`` reference snapshot (when the extract carries one)."""
from __future__ import annotations

import great_expectations as gx

from pipeline import contract
from expectations._suite import Check, rule

E = gx.expectations
TABLE = "practitioners"
KEY = ("doctor_id",)

BATCH_SQL = "SELECT *, CAST($extract_date AS DATE) AS extract_date FROM new_practitioners"

_REQUIRED = [f.name for f in contract.PRACTITIONERS if not f.nullable and f.name not in KEY]


def rules(cfg, extract_date: str):
    return [
        rule("columns_present", "MISSING_COLUMN", "Every contract column present", "合同字段齐全",
             E.ExpectTableColumnsToMatchSet(column_set=list(contract.PRACTITIONERS.names), exact_match=False)),
        rule("doctor_id_not_null", "NULL_KEY", "Doctor id present", "医师编码不为空",
             E.ExpectColumnValuesToNotBeNull(column="doctor_id")),
        rule("required_not_null", "NULL_REQUIRED", "Required columns present", "必填字段不为空",
             *[E.ExpectColumnValuesToNotBeNull(column=c) for c in _REQUIRED]),
    ]


CHECKS = [
    Check("doctor_id_unique", "DUPLICATE_KEY", "Doctor id unique in the snapshot", "医师编码唯一",
          "SELECT doctor_id, count(*) AS copies FROM {batch} WHERE doctor_id IS NOT NULL "
          "GROUP BY 1 HAVING count(*) > 1"),
    # A practitioner's main site may be a contract that has since ended: report, don't hold.
    Check("practice_site_known", "UNKNOWN_INSTITUTION", "Practice site is a known institution",
          "执业机构存在",
          "SELECT p.doctor_id, p.institution_id FROM {batch} AS p "
          "ANTI JOIN ref_institutions AS i USING (institution_id) WHERE p.institution_id IS NOT NULL",
          scope="extract"),
]
