"""A synthetic Korean-ish JSONL corpus of a given size: sentences recombined from a fixed stock of Korean words, for
benchmarks that need volume, not meaning."""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = ("보증금 임대인 임차인 계약 반환 청구 전세 주택 등기 신청 법원 판결 근로자 해고 퇴직금 임금 지급 사업주 "
         "당뇨병 혈당 고혈압 두통 치료 약물 검사 보험 본인부담금 진단 환자 병원 교통사고 합의금 과실비율 위자료 "
         "손해배상 소송 변호사 상담 서류 제출 기한 통지 의무 권리 보호 적용 여부 경우 방법 절차 기준 조건 결과").split()
ENDINGS = ("합니다.", "있습니다.", "됩니다.", "해야 합니다.", "할 수 있습니다.", "입니다.", "이다.", "않습니다.")
PARTICLES = ("은", "는", "이", "가", "을", "를", "에", "에서", "의", "와", "로", "도")
DOMAINS = ("legal", "medical")


def synthetic_sentence(rng: random.Random) -> str:
    """One sentence of 5-12 words with particles and a verb ending."""
    words = [rng.choice(WORDS) + (rng.choice(PARTICLES) if rng.random() < 0.6 else "") for _ in range(rng.randint(5, 12))]
    if rng.random() < 0.15:
        words.insert(rng.randrange(len(words)), f"제{rng.randint(1, 999)}조")
    return " ".join(words) + " " + rng.choice(ENDINGS)


def synthetic_sentences(count: int, seed: int = 0) -> list[str]:
    """`count` sentences (a tokenizer's training text)."""
    rng = random.Random(seed)
    return [synthetic_sentence(rng) for _ in range(count)]


def write_synthetic_corpus(path: Path, size_bytes: int, *, seed: int = 0, sentences_per_doc: tuple[int, int] = (3, 12)) -> int:
    """Write JSONL documents (id, title, domain, text) until the file holds at least `size_bytes`; return the count."""
    rng = random.Random(seed)
    written = count = 0
    with path.open("w", encoding="utf-8") as fh:
        while written < size_bytes:
            text = " ".join(synthetic_sentence(rng) for _ in range(rng.randint(*sentences_per_doc)))
            line = json.dumps({"id": f"SYN-{count:09d}", "title": " ".join(rng.sample(WORDS, 3)),
                               "domain": rng.choice(DOMAINS), "text": text}, ensure_ascii=False) + "\n"
            fh.write(line)
            written += len(line.encode("utf-8"))
            count += 1
    return count
