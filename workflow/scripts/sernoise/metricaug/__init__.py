"""MetricAug (Wu & Lee, Interspeech 2023): augment-while-train led by a speech distortion metric.

* :mod:`.levels`: a superset's metric values quantised into K levels (equal counts or a GMM);
* :mod:`.weights`: Algorithm 1 (level weights from validation WF1 gaps) and the per-epoch draw;
* :mod:`.copypaste`: the CopyPaste baseline's concatenated utterances (Pappagari et al.);
* :mod:`.superset`: noisy copies of utterances at given SNRs with their STOI/PESQ/fwSNRseg;
* :mod:`.strategy`: the ``metricaug`` training strategy (an ``items`` hook of the epoch loop);
* :mod:`.train`: the head's training (the shared loop with Adam) and its H grid;
* :mod:`.job`: the jobs of rules/metricaug.smk; :mod:`.names`: what the Snakefile needs of them;
* :mod:`.family`: the head as a model family of the registry (a plugin).
"""
