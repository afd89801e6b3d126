"""Contrastive teacher-student adaptation to a target noise (Leem et al., CTSL; issue 14).

A model trained on clean speech (the teacher, frozen) is copied and retrained (the student) on
its training set mixed with one target noise, with the transfer loss (:mod:`.losses`), the
InfoNCE contrastive loss, or both, beside the task loss; the baselines retrain the head only
(RH) or the whole model (RM) without them.  The strategies are registered in the training
strategy registry (:mod:`.strategies`); the target noise is :mod:`.target_noise`; the
adaptation and evaluation job is :mod:`.adapt`; the table (Welch tests) :mod:`.table`.
"""
