"""The web app (Streamlit): ``emovox ui`` runs ``streamlit run`` on :mod:`emovox.ui.app`.

Needs the ``ui`` extra (``pip install 'emovox[ui]'``). :mod:`emovox.ui.charts` holds the altair
charts and the spectrogram image; importing this package imports neither streamlit nor altair.
"""

__all__: list[str] = []
