"""The canonical emotion label set and the named views that map it onto fewer classes.

Every corpus loader maps its own codes onto :data:`EMOTIONS`; models are trained on a *view*,
which merges or drops canonical labels (``calm`` becomes ``neutral`` in the 7-class view used
across corpora, because only RAVDESS has ``calm``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from .errors import ParameterError

__all__ = ["Emotion", "EMOTIONS", "LabelView", "VIEWS", "get_view", "NEGATIVE_EMOTIONS", "EMOTION_COLOURS",
           "emotion_colour"]


class Emotion(str, Enum):
    """Canonical emotions (the RAVDESS set, the largest of the four corpora)."""

    NEUTRAL = "neutral"
    CALM = "calm"
    HAPPY = "happy"
    SAD = "sad"
    ANGRY = "angry"
    FEARFUL = "fearful"
    DISGUST = "disgust"
    SURPRISED = "surprised"

    def __str__(self) -> str:
        return self.value


EMOTIONS: tuple[str, ...] = tuple(e.value for e in Emotion)

#: Emotions a call-centre summary counts as negative.
NEGATIVE_EMOTIONS: frozenset[str] = frozenset({"sad", "angry", "fearful", "disgust", "unpleasant"})


@dataclass(frozen=True)
class LabelView:
    """A mapping from canonical labels to a smaller class set; unmapped labels are dropped."""

    name: str
    classes: tuple[str, ...]
    mapping: Mapping[str, str]

    def map(self, label: str) -> str | None:
        """Return the view's class for a canonical ``label``, or ``None`` if the view drops it."""
        return self.mapping.get(str(label))

    def __contains__(self, label: object) -> bool:
        return str(label) in self.mapping


def _identity(classes: tuple[str, ...]) -> dict[str, str]:
    return {c: c for c in classes}


VIEWS: dict[str, LabelView] = {
    "8class": LabelView("8class", EMOTIONS, _identity(EMOTIONS)),
    "7class": LabelView(
        "7class",
        ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"),
        {**_identity(("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")),
         "calm": "neutral"},
    ),
    # CREMA-D's six classes (no calm, no surprise).
    "6class": LabelView(
        "6class",
        ("neutral", "happy", "sad", "angry", "fearful", "disgust"),
        {**_identity(("neutral", "happy", "sad", "angry", "fearful", "disgust")), "calm": "neutral"},
    ),
    # The 4-class view of one source project: sad and angry merged into "unpleasant";
    # fearful and disgust have no place in it and are dropped.
    "4class": LabelView(
        "4class",
        ("neutral", "happy", "surprised", "unpleasant"),
        {"neutral": "neutral", "calm": "neutral", "happy": "happy", "surprised": "surprised",
         "sad": "unpleasant", "angry": "unpleasant"},
    ),
}


def get_view(name: str) -> LabelView:
    """Return the :class:`LabelView` called ``name`` (``8class``, ``7class``, ``6class``, ``4class``)."""
    try:
        return VIEWS[name]
    except KeyError:
        raise ParameterError(
            f"unknown label view {name!r}; choose one of {', '.join(VIEWS)}"
        ) from None


#: One colour per label, the same in every emovox figure (CLI plots, reports) and in the web app.
EMOTION_COLOURS: Mapping[str, str] = {
    "neutral": "#9e9e9e", "calm": "#80cbc4", "happy": "#fbc02d", "surprised": "#fb8c00",
    "sad": "#1e88e5", "fearful": "#8e24aa", "disgust": "#43a047", "angry": "#e53935",
    "pleasant": "#fbc02d", "unpleasant": "#c62828", "no_speech": "#eceff1",
}


def emotion_colour(label: str, default: str = "#607d8b") -> str:
    """The colour of ``label`` (``default`` for a label outside :data:`EMOTION_COLOURS`).

    Examples
    --------
    >>> emotion_colour("angry")
    '#e53935'
    """
    return EMOTION_COLOURS.get(label, default)
