"""The payable-item catalog and the ICD-10 diagnosis list the generator draws from.

Each catalog item carries the contract's knowledge-base columns plus generator-only hints
(which visit types use it, the honest quantity range, its role in the generator).
"""
from __future__ import annotations

from dataclasses import dataclass, field

# age groups used by the generator (ages kept away from the boundaries of every limit)
CHILD, ADULT, ELDERLY = 0, 1, 2
AGE_RANGE = {CHILD: (0, 14), ADULT: (19, 60), ELDERLY: (61, 95)}   # ages reachable in a run
# visit types
OP, IP, PH = 0, 1, 2
VT_NAMES = ("outpatient", "inpatient", "pharmacy")


@dataclass
class Item:
    name: str
    category: str
    unit: str
    price: float                       # cap at level 3 (or list price when uncapped)
    vts: str = "oip"                   # o outpatient, i inpatient, p pharmacy
    qmin: float = 1
    qmax: float = 1
    capped: bool = True
    level_discount: bool = True        # l2 = 0.9 l3, l1 = 0.8 l3 (drugs: same cap everywhere)
    sex_only: str | None = None
    min_age: int | None = None
    max_age: int | None = None
    min_level: int | None = None
    max_daily: float | None = None     # None: no limit; "q": = qmax
    max_days_supply: int | None = None
    indication: list[str] | None = None
    high_resale: bool = False
    bundle_of: list[str] | None = None  # names, resolved to codes
    hours_per_unit: float | None = None
    role: str = "general"              # general consult chronic package time bed nursing_day
    dx_only: list[str] | None = None   # generator-only: used only for these dx prefixes
    eligible_pct: int = 100            # share of the amount eligible for fund payment
    code: str = ""


def _drug(name, price, **kw):
    kw.setdefault("unit", "box")
    kw.setdefault("qmax", 3)
    kw.setdefault("max_daily", 6)
    kw.setdefault("max_days_supply", 7)
    kw.setdefault("level_discount", False)
    unit = kw.pop("unit")
    return Item(name, "drug", unit, price, **kw)


def build_items() -> list[Item]:
    it: list[Item] = []
    a = it.append
    # --- general acute drugs (no indication limit)
    for name, p in [("Paracetamol tablets", 6.5), ("Ibuprofen sustained-release capsules", 12.8),
                    ("Loratadine tablets", 15.2), ("Cetirizine tablets", 18.6),
                    ("Vitamin C tablets", 3.2), ("Vitamin B complex tablets", 4.1),
                    ("Compound licorice tablets", 5.5), ("Ambroxol tablets", 9.9),
                    ("Dextromethorphan syrup", 14.3), ("Domperidone tablets", 16.8),
                    ("Lactulose oral solution", 28.0), ("Loperamide capsules", 11.4),
                    ("Metoclopramide tablets", 4.8), ("Lianhua Qingwen capsules", 24.5),
                    ("Banlangen granules", 12.0), ("Compound paracetamol tablets", 7.7),
                    ("Amoxicillin capsules", 13.6), ("Cefuroxime axetil tablets", 32.4)]:
        a(_drug(name, p))
    for name, p in [("Glucose injection 5% 250ml", 4.2), ("Sodium chloride injection 0.9% 250ml", 3.8),
                    ("Potassium chloride injection", 2.6), ("Vitamin B6 injection", 1.9),
                    ("Human albumin injection 10g", 420.0)]:
        a(_drug(name, p, vts="i", unit="vial", high_resale=name.startswith("Human")))
    # paediatric drugs (max age 14)
    for name, p in [("Ibuprofen suspension (paediatric)", 15.6), ("Paracetamol drops (paediatric)", 13.2),
                    ("Children's cold granules", 18.9), ("Paediatric cough syrup", 16.4),
                    ("Paediatric probiotic powder", 29.8)]:
        a(_drug(name, p, max_age=14))
    # adult-only drugs
    for name, p in [("Levofloxacin tablets", 21.5), ("Moxifloxacin tablets", 48.0),
                    ("Tramadol sustained-release tablets", 36.0)]:
        a(_drug(name, p, min_age=18))
    # --- indication-limited drugs
    ind = [
        ("Ceftriaxone for injection", 18.4, "io", ["J18", "J20", "J44", "N39", "K35", "K80", "A09"], False, None),
        ("Azithromycin tablets", 22.6, "oip", ["J06", "J18", "J20", "H66"], False, None),
        ("Amoxicillin-clavulanate tablets", 26.0, "oip", ["J06", "J18", "J20", "H66", "N39"], False, None),
        ("Budesonide nebuliser suspension", 38.5, "oi", ["J45", "J44", "J18", "J20"], False, None),
        ("Salbutamol inhaler", 27.5, "oip", ["J45", "J44"], False, None),
        ("Tiotropium inhalation powder", 198.0, "oip", ["J44"], True, None),
        ("Montelukast tablets", 56.0, "oip", ["J45"], False, None),
        ("Omeprazole capsules", 19.8, "oip", ["K29", "K21", "K25"], False, None),
        ("Esomeprazole for injection", 66.0, "i", ["K29", "K25", "K92", "K80"], False, None),
        ("Mosapride tablets", 31.0, "oip", ["K29", "K30"], False, None),
        ("Montmorillonite powder", 14.5, "oip", ["A09", "K59"], False, None),
        ("Ursodeoxycholic acid capsules", 88.0, "oip", ["K80"], False, None),
        ("Aspirin enteric-coated tablets", 12.5, "oip", ["I63", "I20", "I25"], False, None),
        ("Clopidogrel tablets", 118.0, "oip", ["I63", "I20", "I25"], True, None),
        ("Edaravone injection", 145.0, "i", ["I63"], False, None),
        ("Furosemide tablets", 5.6, "oip", ["I50"], False, None),
        ("Sacubitril-valsartan tablets", 210.0, "oip", ["I50"], True, None),
        ("Celecoxib capsules", 45.0, "oip", ["M54", "M17", "M15"], False, None),
        ("Diclofenac gel", 29.0, "op", ["M54", "M17"], False, None),
        ("Sodium hyaluronate injection", 260.0, "oi", ["M17"], True, None),
        ("Sertraline tablets", 96.0, "oip", ["F32"], True, None),
        ("Gefitinib tablets", 547.0, "oip", ["C34"], True, None),
        ("Pemetrexed for injection", 890.0, "i", ["C34"], True, None),
        ("Entecavir tablets", 178.0, "oip", ["B18"], True, None),
        ("Tobramycin eye drops", 17.0, "op", ["H10"], False, None),
        ("Mometasone furoate cream", 33.0, "op", ["L30"], False, None),
        ("Nitrofurantoin tablets", 12.0, "oip", ["N39"], False, None),
        ("Tamsulosin capsules", 68.0, "oip", ["N40"], False, "M"),
        ("Oxytocin injection", 9.5, "i", ["O80"], False, "F"),
        ("Metronidazole vaginal gel", 24.0, "op", ["N76"], False, "F"),
        ("Progesterone capsules", 86.0, "op", ["O26"], True, "F"),
    ]
    for name, p, vts, dx, hr, sex in ind:
        a(_drug(name, p, vts=vts, indication=dx, high_resale=hr, sex_only=sex))
    # --- chronic refill drugs (pack = 7 days)
    for name, p, dx, hr in [("Amlodipine tablets", 21.0, ["I10"], False),
                            ("Nifedipine controlled-release tablets", 32.0, ["I10"], False),
                            ("Valsartan capsules", 28.0, ["I10"], False),
                            ("Metoprolol succinate tablets", 25.0, ["I10", "I20", "I50"], False),
                            ("Metformin tablets", 14.0, ["E11"], False),
                            ("Glimepiride tablets", 26.0, ["E11"], False),
                            ("Insulin glargine injection", 165.0, ["E11"], True),
                            ("Dapagliflozin tablets", 118.0, ["E11"], True),
                            ("Atorvastatin tablets", 36.0, ["E78", "I20", "I25", "I63"], False),
                            ("Rosuvastatin tablets", 42.0, ["E78", "I20", "I25"], True)]:
        a(_drug(name, p, vts="p", indication=dx, high_resale=hr, role="chronic",
                max_days_supply=30, qmax=4))
    # --- herbal
    for i, name in enumerate(["Astragalus root pieces", "Angelica sinensis pieces", "Codonopsis root pieces",
                              "Licorice root pieces", "Poria pieces", "Atractylodes pieces",
                              "Chuanxiong pieces", "Ginseng pieces", "Cordyceps pieces", "Ganoderma spore powder",
                              "Jujube pieces", "Platycodon pieces"]):
        hr = name.startswith(("Cordyceps", "Ganoderma", "Ginseng"))
        a(Item(name, "herbal", "g", 0.12 + 0.05 * i + (3.0 if hr else 0), vts="oip", qmin=10, qmax=30,
               capped=i % 3 != 0, level_discount=False, high_resale=hr, max_daily=None, eligible_pct=90))
    # --- material
    for name, p, vts, lvl in [("Disposable syringe 5ml", 0.8, "oi", None), ("Infusion set", 3.5, "oi", None),
                              ("Medical gauze", 1.2, "oip", None), ("Elastic bandage", 6.5, "oip", None),
                              ("Disposable catheter", 18.0, "i", None), ("Plaster splint", 45.0, "oi", None),
                              ("Surgical suture", 22.0, "oi", None), ("Indwelling needle", 12.0, "i", None),
                              ("Coronary stent", 720.0, "i", 3), ("Orthopaedic plate", 1800.0, "i", 2)]:
        a(Item(name, "material", "piece", p, vts=vts, qmin=1, qmax=3 if p < 50 else 1,
               max_daily=None if p < 50 else 2, min_level=lvl, eligible_pct=100 if p < 100 else 80,
               level_discount=False))
    # --- exams
    ex = [("Chest X-ray", 70, None, None, None, None, None), ("Abdominal ultrasound", 120, None, None, None, None, None),
          ("Electrocardiogram", 25, None, None, None, None, None), ("Echocardiography", 220, None, None, None, None, None),
          ("Head CT", 260, 2, None, None, None, None), ("Chest CT", 280, 2, None, None, None, None),
          ("Lumbar MRI", 600, 2, None, None, None, None), ("Head MRI", 650, 2, None, None, None, None),
          ("PET-CT whole body", 7800, 3, None, None, None, None), ("Gastroscopy", 380, 2, None, None, None, None),
          ("Colonoscopy", 450, 2, None, None, None, None), ("Eye examination", 30, None, None, None, None, None),
          ("Hearing test", 40, None, None, None, None, None), ("Bone density scan", 150, None, None, 40, None, None),
          ("Prostate ultrasound", 110, None, "M", 18, None, None), ("Digital rectal prostate exam", 35, None, "M", 18, None, None),
          ("Gynaecological ultrasound", 120, None, "F", 12, None, None), ("Cervical smear", 80, None, "F", 18, None, None),
          ("Obstetric ultrasound", 160, None, "F", 15, 55, None), ("Mammography", 180, 2, "F", 18, None, None),
          ("Geriatric comprehensive assessment", 90, None, None, 60, None, None),
          ("Paediatric growth assessment", 45, None, None, None, 14, None)]
    for name, p, lvl, sex, mn, mx, _ in ex:
        a(Item(name, "exam", "time", float(p), vts="oi", min_level=lvl, sex_only=sex, min_age=mn, max_age=mx,
               max_daily=1))
    # --- labs (components first, then packages)
    labs = [("Complete blood count", 20), ("C-reactive protein", 30), ("Urinalysis", 12), ("Stool routine", 10),
            ("Blood glucose", 8), ("Glycated haemoglobin", 65), ("Alanine aminotransferase", 6),
            ("Aspartate aminotransferase", 6), ("Total bilirubin", 6), ("Albumin", 6), ("Blood urea nitrogen", 6),
            ("Creatinine", 6), ("Uric acid", 6), ("Total cholesterol", 6), ("Triglycerides", 6),
            ("HDL cholesterol", 8), ("LDL cholesterol", 8), ("Serum electrolytes", 25), ("Coagulation panel", 70),
            ("Troponin I", 90), ("NT-proBNP", 160), ("Blood culture", 120), ("Procalcitonin", 150)]
    for name, p in labs:
        a(Item(name, "lab", "test", float(p), vts="oi", max_daily=1))
    a(Item("Prostate-specific antigen", "lab", "test", 75.0, vts="oi", sex_only="M", min_age=18, max_daily=1))
    a(Item("Serum hCG", "lab", "test", 45.0, vts="oi", sex_only="F", min_age=12, max_age=55, max_daily=1))
    for name, p, comps in [("Liver function panel", 22.0, ["Alanine aminotransferase", "Aspartate aminotransferase",
                                                            "Total bilirubin", "Albumin"]),
                           ("Renal function panel", 16.0, ["Blood urea nitrogen", "Creatinine", "Uric acid"]),
                           ("Lipid panel", 25.0, ["Total cholesterol", "Triglycerides", "HDL cholesterol",
                                                  "LDL cholesterol"]),
                           ("Blood count with CRP package", 42.0, ["Complete blood count", "C-reactive protein"])]:
        a(Item(name, "lab", "panel", p, vts="oi", max_daily=1, bundle_of=comps, role="package"))
    # --- treatments
    for name, p, vts, q, lvl in [("Intravenous infusion", 8.0, "oi", 2, None), ("Intramuscular injection", 4.0, "oi", 2, None),
                                 ("Nebulisation therapy", 12.0, "oi", 2, None), ("Wound dressing change", 15.0, "oi", 1, None),
                                 ("Acupuncture", 35.0, "oi", 1, None), ("Tuina massage", 45.0, "oi", 1, None),
                                 ("Cupping therapy", 20.0, "oi", 1, None), ("Lumbar traction", 25.0, "oi", 1, None),
                                 ("Urinary catheterisation", 20.0, "i", 1, None), ("Enema", 18.0, "i", 1, None),
                                 ("Blood transfusion", 60.0, "i", 1, None), ("Haemodialysis", 420.0, "i", 1, 2)]:
        a(Item(name, "treatment", "time", p, vts=vts, qmax=q, max_daily=q, min_level=lvl))
    # time-based (hours per unit); used by the generator at most once per patient-day
    for name, cat, p, hpu, mx in [("ECG monitoring (per hour)", "treatment", 6.0, 1.0, 24),
                                  ("Oxygen inhalation (per hour)", "treatment", 3.0, 1.0, 24),
                                  ("Physiotherapy (per 30 minutes)", "treatment", 30.0, 0.5, 6),
                                  ("Special nursing (per hour)", "nursing", 12.0, 1.0, 24)]:
        a(Item(name, cat, "hour" if hpu == 1 else "30 min", p, vts="i", qmin=1, qmax=mx, max_daily=mx,
               hours_per_unit=hpu, role="time"))
    # --- surgery
    for name, p, vts, lvl, sex, dx in [("Debridement and suture (minor)", 120, "oi", None, None, ["S52", "L30"]),
                                       ("Skin lesion excision", 260, "oi", None, None, ["L30"]),
                                       ("Appendectomy", 1600, "i", 1, None, ["K35"]),
                                       ("Laparoscopic cholecystectomy", 3800, "i", 2, None, ["K80"]),
                                       ("Normal vaginal delivery", 1200, "i", None, "F", ["O80"]),
                                       ("Caesarean section", 2800, "i", 2, "F", ["O80"]),
                                       ("Fracture internal fixation", 3200, "i", 2, None, ["S52"]),
                                       ("Percutaneous coronary intervention", 9800, "i", 3, None, ["I20"]),
                                       ("Transurethral resection of prostate", 4200, "i", 2, "M", ["N40"]),
                                       ("Mechanical thrombectomy", 12000, "i", 3, None, ["I63"])]:
        a(Item(name, "surgery", "time", float(p), vts=vts, min_level=lvl, sex_only=sex, max_daily=1, dx_only=dx))
    # --- beds (1 unit = 1 day) and daily nursing
    # (the ICU day carries its 24 hours, as many price lists write it: a day-based clock)
    for name, p, lvl, hpu in [("General ward bed", 40.0, None, None), ("Double room bed", 70.0, None, None),
                              ("ICU bed", 600.0, 2, 24.0)]:
        a(Item(name, "bed", "day", p, vts="i", max_daily=1, min_level=lvl, role="bed", hours_per_unit=hpu))
    for name, p in [("Grade I nursing", 36.0), ("Grade II nursing", 24.0), ("Grade III nursing", 14.0)]:
        a(Item(name, "nursing", "day", p, vts="i", max_daily=1, role="nursing_day"))
    # --- other: consultations and fees
    for name, p in [("General outpatient consultation", 15.0), ("Specialist consultation", 30.0),
                    ("Chief physician consultation", 50.0), ("Emergency consultation", 25.0)]:
        a(Item(name, "other", "time", p, vts="o", max_daily=1, role="consult"))
    a(Item("Medical record booklet", "other", "piece", 1.0, vts="o", max_daily=None, capped=False,
           eligible_pct=0, role="fee"))
    a(Item("Inpatient diagnosis fee", "other", "day", 10.0, vts="i", max_daily=1, role="fee"))
    # resolve defaults and codes
    prefix = {"drug": "XD", "herbal": "ZH", "material": "CM", "exam": "EX", "lab": "LB", "treatment": "TR",
              "surgery": "SG", "bed": "BD", "nursing": "NS", "other": "OT"}
    counters: dict[str, int] = {}
    for item in it:
        if item.max_daily == "q":
            item.max_daily = item.qmax
        n = counters.get(item.category, 0) + 1
        counters[item.category] = n
        item.code = f"{prefix[item.category]}{(hash_name(item.name) % 9000 + 1000):04d}{n:04d}"
    names = {i.name: i.code for i in it}
    for item in it:
        if item.bundle_of:
            item.bundle_of = [names[c] for c in item.bundle_of]
    return it


def hash_name(s: str) -> int:
    h = 2166136261
    for ch in s.encode():
        h = ((h ^ ch) * 16777619) & 0xFFFFFFFF
    return h


@dataclass
class Dx:
    code: str
    name: str
    sex: str | None
    ages: tuple[int, ...]
    w_op: float
    w_ip: float
    dept: str
    chronic: bool = False

    @property
    def cat3(self) -> str:
        return self.code[:3]


A = (CHILD, ADULT, ELDERLY)
AE = (ADULT, ELDERLY)
E = (ELDERLY,)

DX_LIST: list[Dx] = [
    Dx("J06.9", "Acute upper respiratory infection", None, A, 10, 0, "RES"),
    Dx("J18.9", "Pneumonia", None, A, 3, 10, "RES"),
    Dx("J20.9", "Acute bronchitis", None, A, 5, 2, "RES"),
    Dx("J44.9", "Chronic obstructive pulmonary disease", None, E, 2, 5, "RES"),
    Dx("J45.9", "Asthma", None, A, 2, 1, "RES"),
    Dx("I10", "Essential hypertension", None, AE, 6, 1, "CAR", True),
    Dx("E11.9", "Type 2 diabetes mellitus", None, AE, 5, 2, "END", True),
    Dx("E78.5", "Hyperlipidaemia", None, AE, 2, 0, "END", True),
    Dx("K29.7", "Gastritis", None, AE, 6, 1, "GAS"),
    Dx("K35.8", "Acute appendicitis", None, A, 0, 3, "GSU"),
    Dx("K80.2", "Gallstones", None, AE, 1, 3, "GSU"),
    Dx("I63.9", "Cerebral infarction", None, E, 1, 6, "NEU"),
    Dx("I20.9", "Angina pectoris", None, AE, 2, 4, "CAR"),
    Dx("I50.9", "Heart failure", None, E, 1, 4, "CAR"),
    Dx("M54.5", "Low back pain", None, AE, 5, 1, "ORT"),
    Dx("M17.9", "Knee osteoarthritis", None, E, 3, 1, "ORT"),
    Dx("N40", "Benign prostatic hyperplasia", "M", E, 2, 1, "URO"),
    Dx("N39.0", "Urinary tract infection", None, A, 3, 1, "URO"),
    Dx("O80", "Single spontaneous delivery", "F", (ADULT,), 0, 5, "OBG"),
    Dx("O26.9", "Pregnancy-related condition", "F", (ADULT,), 2, 0, "OBG"),
    Dx("N76.0", "Acute vaginitis", "F", AE, 2, 0, "OBG"),
    Dx("A09", "Infectious gastroenteritis", None, A, 4, 2, "INF"),
    Dx("R50.9", "Fever", None, (CHILD,), 4, 0, "PED"),
    Dx("H66.9", "Otitis media", None, (CHILD,), 2, 0, "ENT"),
    Dx("H10.9", "Conjunctivitis", None, A, 2, 0, "OPH"),
    Dx("L30.9", "Dermatitis", None, A, 3, 0, "DER"),
    Dx("S52.5", "Fracture of lower end of radius", None, A, 1, 2, "ORT"),
    Dx("C34.9", "Malignant neoplasm of lung", None, E, 1, 2, "ONC"),
    Dx("F32.9", "Depressive episode", None, AE, 1, 0, "PSY"),
    Dx("B18.1", "Chronic viral hepatitis B", None, AE, 1, 0, "INF"),
    # drawn by no background visit (weights 0, so the background's draws are unchanged):
    # the scheduled dialysis cohorts of lookalikes/cohorts.py
    Dx("N18.5", "Chronic kidney disease, stage 5", None, AE, 0, 0, "URO", True),
]

SPECIALTIES = ("RES", "CAR", "END", "GAS", "GSU", "NEU", "ORT", "URO", "OBG", "INF", "PED", "ENT",
               "OPH", "DER", "ONC", "PSY", "GEN", "EMR")
