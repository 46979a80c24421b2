"""Russian typed in Latin letters ("gde moy zakaz"): recognising it and writing it back in Cyrillic.

Customers on a Latin keyboard write Russian the way it sounds, without any one standard. Recognition is a
vocabulary of frequent shop-desk words in their common spellings plus letter patterns English does not have
(zh, kh, shch, endings like -iy, -oy, -aya, -sya, -ite, one-letter prepositions); an English function word
counts against it.
The classifier was trained on Cyrillic, so a recognised message is converted by a greedy longest-match table
before classification; the converted text need not be perfect spelling, only close enough for its character
n-grams to match ("skolko stoit" becomes "сколко стоит").
"""

from __future__ import annotations

import re

_RU_WORDS = frozenset(
    """
    privet privetik zdravstvuyte zdravstvuite zdravstvujte zdrastvuyte zdrastvuite zdraste zdrasti dobryy dobriy
    dobryi dobry dobroe dobroye utro den dnya dney vecher spasibo spasibki spasib blagodaryu pozhaluysta
    pozhaluista pozhalujsta pojaluista pojaluysta pozhalusta gde moy moi moj moya moe moyo moyu moego
    zakaz zakaza zakazu zakazom zakazal zakazala zakazy dostavka dostavki dostavku dostavkoy dostavit kogda
    skolko stoit stoimost tsena tseny cena ceny oplata oplaty oplatit oplatil oplatila vozvrat vozvrata
    vernite vernut verni dengi dengi denegi chto chto-to kak pochemu zachem net ne mne menya nam nas vy vam
    vas nuzhen nuzhna nuzhno operator operatora chelovek cheloveka zhivoy zhivogo pomogite pomoch pomosch
    pomoshch khochu hochu tovar tovara posylka posylku posylki prishel prishla prishlo prishol ne prishel eshche
    eshe esche uzhe seychas sejchas segodnya zavtra vchera karta kartoy karty kartu sdelat mozhno mozhet mojno
    budet byl byla bylo nichego vsyo vse vsem ochen plokho ploho khorosho horosho poka zhaloba adres nomer
    srok sroki rubley rublei rub skidka skidki promokod kupit kupil kupila otmenit otmena izmenit poluchit
    poluchil poluchila oshibka problema rabotaet sayt sait akkaunt parol voyti voiti vojti zabyl zabyla
    chasy rabota rabotayete rabotaete otkryty magazin dva raza dvazhdy spisali spisanie schet schyot chek
    obmen obmenyat razmer slomalsya slomano brak uzhas uzhasno bezobrazie sud podam
    da kto tut est kuda otslezhivanie trek nakladnaya kurer kuryer pochta pochtoy
    """.split()
)
_EN_WORDS = frozenset(
    """
    the a an is are was were be been am i you he she it we they my your our their me him her us them this that
    these those what where when why how who which can could would should will shall do does did done have has
    had not no yes to of in on at for from with by about and or but if so please thanks thank hello hi hey
    order orders delivery refund price prices money help want need get got pay paid card account password
    """.split()
)
_RU_PATTERN = re.compile(r"(zh|kh|shch|sch|yy$|iy$|oy$|aya$|sya$|tsya$|ogo$|ego$|ym$|om$|ite$|yu|^ya|ya$|ts)")
_RU_STRONG = re.compile(r"(zh|kh|shch|yy$|iy$|aya$|sya$|ogo$|ego$|ym$)")
"""Patterns English words almost never have: two of them decide without a vocabulary word."""
_RU_PREPOSITIONS = frozenset("v k s u".split())
"""One-letter words English does not have ("v subbotu", "s operatorom")."""
_LATIN_WORD = re.compile(r"[a-z']+")

# Longest spellings first; y after a vowel is й, elsewhere ы.
_MULTI = (
    ("shch", "щ"),
    ("sch", "щ"),
    ("zh", "ж"),
    ("kh", "х"),
    ("ts", "ц"),
    ("ch", "ч"),
    ("sh", "ш"),
    ("yu", "ю"),
    ("ju", "ю"),
    ("ya", "я"),
    ("ja", "я"),
    ("yo", "ё"),
    ("jo", "ё"),
    ("ye", "е"),
    ("je", "е"),
)
_SINGLE = {
    "a": "а",
    "b": "б",
    "v": "в",
    "g": "г",
    "d": "д",
    "e": "е",
    "z": "з",
    "i": "и",
    "j": "й",
    "k": "к",
    "l": "л",
    "m": "м",
    "n": "н",
    "o": "о",
    "p": "п",
    "r": "р",
    "s": "с",
    "t": "т",
    "u": "у",
    "f": "ф",
    "h": "х",
    "c": "ц",
    "w": "в",
    "q": "к",
    "x": "кс",
    "'": "ь",
}
_VOWELS = set("aeiouy")


def _words(text: str) -> list[str]:
    return _LATIN_WORD.findall(text.casefold().replace("\u2019", "'"))


def russian_score(text: str) -> tuple[float, float]:
    """(Russian evidence, English evidence) of a Latin-letter message, in word units."""
    ru = en = 0.0
    for word in _words(text):
        if word in _EN_WORDS:
            en += 1.0
        elif word in _RU_WORDS or word in _RU_PREPOSITIONS:
            ru += 1.0
        elif len(word) > 2 and _RU_PATTERN.search(word):
            ru += 0.5
    return ru, en


def looks_russian(text: str) -> bool:
    """True when a Latin-letter message reads as transliterated Russian ("privet", "gde moy zakaz").

    At least one known Russian word, or two words with patterns English lacks ("vsego khoroshego"): weaker
    patterns alone ("ahoy hoy") are not enough.
    """
    ru, en = russian_score(text)
    words = _words(text)
    known = any(w in _RU_WORDS or w in _RU_PREPOSITIONS for w in words)
    strong = sum(1 for w in words if len(w) > 2 and _RU_STRONG.search(w))
    return (known or strong >= 2) and ru >= 1.0 and ru > en


def _word_to_cyrillic(word: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(word):
        for latin, cyrillic in _MULTI:
            if word.startswith(latin, i):
                out.append(cyrillic)
                i += len(latin)
                break
        else:
            ch = word[i]
            if ch == "y":
                out.append("й" if i > 0 and word[i - 1] in _VOWELS else "ы")
            else:
                out.append(_SINGLE.get(ch, ch))
            i += 1
    return "".join(out)


def to_cyrillic(text: str) -> str:
    """Latin-letter Russian in Cyrillic, letter by letter (case folded; other characters kept)."""
    return _LATIN_WORD.sub(lambda m: _word_to_cyrillic(m.group(0)), text.casefold())
