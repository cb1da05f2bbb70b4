"""Cardiology reports for the sandbox: scanned EKG studies (`/api/documents`, metatag
"EKG study"), dated on a visit where the patient's physical exam was recorded.

Run once after every chart is written, from its own random generator per patient and its own
range of document ids, so adding reports changes no record the rest of the generator makes,
and the showcase patients' reports do not depend on the number of patients. Imaging and
pathology reports are among the scanned documents already.
"""

from __future__ import annotations

import random
from datetime import date

from facade.upstream.drchrono.sandbox.context import Chart, IdSequence, timestamp
from facade.upstream.drchrono.sandbox.dataset import Record

EKG_STUDY = "EKG study"
#: Share of adults (40 and over) with an exam on file who had an EKG.
EKG_SHARE = 0.3
EKG_DETAILS = ("12-lead resting", "12-lead resting, outside records", "rhythm strip")
#: Above the scanned documents' ids (which start at 221,904,000 and grow ~9 per document).
REPORT_IDS_START = 229_400_000


def write_reports(charts: list[Chart], records: dict[str, list[Record]], seed: int) -> None:
    """EKG study documents for the showcase adult and some adults with an exam on file."""
    ids = IdSequence(REPORT_IDS_START)
    exams_by_patient: dict[int, list[Record]] = {}
    for exam in records["patient_physical_exams"]:
        exams_by_patient.setdefault(int(exam["patient"]), []).append(exam)
    for index, chart in enumerate(charts):
        rng = random.Random(f"facade-sandbox:{seed}:reports:{index}")
        exams = exams_by_patient.get(chart.patient_id, [])
        if not exams or chart.showcase in ("child", "deceased"):
            continue
        if chart.showcase != "adult" and (
            chart.age_on(chart.last_day) < 40 or rng.random() >= EKG_SHARE
        ):
            continue
        exam = exams[-1] if chart.showcase else rng.choice(exams)
        day = date.fromisoformat(str(exam["effective_time"])[:10])
        document_id = ids.next(rng)
        records["documents"].append(
            {
                "id": document_id,
                "date": day.isoformat(),
                "description": f"{EKG_STUDY} - {rng.choice(EKG_DETAILS)}",
                "doctor": exam["doctor"],
                "patient": chart.patient_id,
                "document": f"/files/documents/{document_id}.pdf",
                "metatags": [EKG_STUDY],
                "archived": False,
                "updated_at": timestamp(day, rng, 17, 19),
            }
        )
