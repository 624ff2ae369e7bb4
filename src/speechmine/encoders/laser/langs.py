"""The released LASER models: names, file names, LASER3 languages.

Source: the official ``laser_encoders`` package (0.0.2, ``language_list.py`` and
``download_models.py``; BSD licence) and LASER's ``nllb/download_models.sh``, which agree:
LASER2 is one model (``laser2.pt`` + ``laser2.spm`` + ``laser2.cvocab``); LASER3 is one
model per language, ``laser3-<code>.v1.pt``, where ``<code>`` is a FLORES-200 code; 35 of
them ship their own SentencePiece model and dictionary (``laser3-<code>.v1.spm`` /
``.cvocab``), the others read LASER2's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..base import EncoderError

__all__ = [
    "BASE_URL", "LASER3_LANGS", "LASER3_OWN_SPM", "ModelFiles", "UnknownModelError",
    "laser3_lang", "model_files", "is_model_name", "RELEASED_DIM",
]

#: Where the released files are (laser_encoders' ``LaserModelDownloader.base_url``).
BASE_URL = "https://dl.fbaipublicfiles.com/nllb/laser"
#: Width of every released LASER2 / LASER3 embedding (one space: LASER3 students were
#: distilled into LASER2's).
RELEASED_DIM = 1024

#: The 147 languages with a LASER3 encoder (``laser_encoders.language_list``).
LASER3_LANGS: tuple[str, ...] = tuple("""
ace_Latn aka_Latn als_Latn amh_Ethi asm_Beng awa_Deva ayr_Latn azb_Arab azj_Latn bak_Cyrl
bam_Latn ban_Latn bel_Cyrl bem_Latn ben_Beng bho_Deva bjn_Latn bod_Tibt bug_Latn ceb_Latn
cjk_Latn ckb_Arab crh_Latn cym_Latn dik_Latn diq_Latn dyu_Latn dzo_Tibt ewe_Latn fao_Latn
fij_Latn fon_Latn fur_Latn fuv_Latn gaz_Latn gla_Latn gle_Latn grn_Latn guj_Gujr hat_Latn
hau_Latn hin_Deva hne_Deva hye_Armn ibo_Latn ilo_Latn ind_Latn jav_Latn kab_Latn kac_Latn
kam_Latn kan_Knda kas_Arab kas_Deva kat_Geor kaz_Cyrl kbp_Latn kea_Latn khk_Cyrl khm_Khmr
kik_Latn kin_Latn kir_Cyrl kmb_Latn kmr_Latn knc_Arab knc_Latn kon_Latn lao_Laoo lij_Latn
lim_Latn lin_Latn lmo_Latn ltg_Latn ltz_Latn lua_Latn lug_Latn luo_Latn lus_Latn mag_Deva
mai_Deva mal_Mlym mar_Deva min_Latn mlt_Latn mni_Beng mos_Latn mri_Latn mya_Mymr npi_Deva
nso_Latn nus_Latn nya_Latn ory_Orya pag_Latn pan_Guru pap_Latn pbt_Arab pes_Arab plt_Latn
prs_Arab quy_Latn run_Latn sag_Latn san_Deva sat_Beng scn_Latn shn_Mymr sin_Sinh smo_Latn
sna_Latn snd_Arab som_Latn sot_Latn srd_Latn ssw_Latn sun_Latn swh_Latn szl_Latn tam_Taml
taq_Latn tat_Cyrl tel_Telu tgk_Cyrl tgl_Latn tha_Thai tir_Ethi tpi_Latn tsn_Latn tso_Latn
tuk_Latn tum_Latn tur_Latn twi_Latn tzm_Tfng uig_Arab umb_Latn urd_Arab uzn_Latn vec_Latn
war_Latn wol_Latn xho_Latn ydd_Hebr yor_Latn zsm_Latn zul_Latn
""".split())

#: LASER3 languages whose model ships its own SentencePiece model and dictionary.
LASER3_OWN_SPM: frozenset[str] = frozenset("""
amh_Ethi ayr_Latn azj_Latn bak_Cyrl bel_Cyrl bod_Tibt ckb_Arab crh_Latn dik_Latn dzo_Tibt
fur_Latn fuv_Latn grn_Latn kab_Latn kac_Latn kaz_Cyrl kir_Cyrl kmr_Latn lij_Latn lim_Latn
lmo_Latn ltg_Latn mya_Mymr pbt_Arab pes_Arab prs_Arab sat_Beng scn_Latn srd_Latn szl_Latn
taq_Latn tgk_Cyrl tir_Ethi tzm_Tfng vec_Latn
""".split())


class UnknownModelError(EncoderError):
    """A model name that is not a released LASER model (message lists close matches)."""


@dataclass(frozen=True)
class ModelFiles:
    """The files of one released model, by name in the LASER download folder."""

    #: ``laser2`` or ``laser3-<code>``
    name: str
    checkpoint: str
    spm: str
    vocab: str
    #: the LASER3 language (FLORES-200 code); None for LASER2
    lang: str | None = None


LASER2 = ModelFiles("laser2", "laser2.pt", "laser2.spm", "laser2.cvocab")

_LASER3_RE = re.compile(r"^laser3[-_](?P<code>[A-Za-z_-]+?)(?:\.v1)?(?:\.pt)?$")


def laser3_lang(code: str) -> str:
    """The LASER3 language a user code means: ``wol``, ``wo``, ``wol_Latn``, ``wol-Latn`` →
    ``wol_Latn``; a language with two scripts takes the usual one unless the code names it
    (``kas`` → ``kas_Arab``, ``kas_Deva``). Raises :class:`UnknownModelError` listing close
    matches (a language LASER3 does not cover is served by LASER2: ``model: laser2``)."""
    from ..sonar.langs import UnknownLanguageError, text_lang

    try:
        return text_lang(code, LASER3_LANGS)
    except UnknownLanguageError:
        import difflib

        close = difflib.get_close_matches(code, LASER3_LANGS, n=5, cutoff=0.5)
        raise UnknownModelError(
            f"no LASER3 encoder for language {code!r} ({len(LASER3_LANGS)} languages have "
            f"one; close matches: {', '.join(close) or '(none)'}); LASER2 (model: laser2) "
            "covers the ~100 languages LASER was trained on, English included"
        ) from None


def laser3_files(lang: str) -> ModelFiles:
    """The files of the LASER3 model of ``lang`` (any code :func:`laser3_lang` takes)."""
    code = laser3_lang(lang)
    stem = f"laser3-{code}.v1"
    own = code in LASER3_OWN_SPM
    return ModelFiles(f"laser3-{code}", f"{stem}.pt", f"{stem}.spm" if own else LASER2.spm,
                      f"{stem}.cvocab" if own else LASER2.vocab, lang=code)


def is_model_name(value: str) -> bool:
    """Does ``value`` look like a model name (rather than a path)?"""
    text = value.strip()
    return text in ("laser2", "laser2.pt", "laser3") or bool(_LASER3_RE.match(text))


def model_files(name: str, lang: str | None) -> ModelFiles:
    """The released files a model name means.

    ``laser2`` (or ``laser2.pt``); ``laser3-<code>`` (also ``laser3-<code>.v1`` and
    ``laser3-<code>.v1.pt``, the file names; the code as :func:`laser3_lang` reads it);
    ``laser3``: the LASER3 model of ``lang``. Raises :class:`UnknownModelError`.
    """
    text = name.strip()
    if text in ("laser2", "laser2.pt"):
        return LASER2
    if text == "laser3":
        if not lang:
            raise UnknownModelError("model laser3 picks the LASER3 encoder of the side's "
                                    "language, but no language was given; name one "
                                    "(laser3-wol_Latn) or give lang")
        return laser3_files(lang)
    m = _LASER3_RE.match(text)
    if m:
        return laser3_files(m.group("code"))
    raise UnknownModelError(
        f"{name!r} is neither a LASER model name (laser2, laser3, laser3-<language> such as "
        "laser3-wol_Latn) nor an existing file"
    )
