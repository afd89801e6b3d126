"""Rule augment_gallery: spectrograms of one utterance, clean and under every condition (one pool)."""

import json

from sernoise.audio_store import AudioStore
from sernoise.augmented_io import load_params
from sernoise.corpora.manifest import read_manifest
from sernoise.gallery import gallery_utterance, plot_gallery, snr_text
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    manifest = read_manifest(snakemake.input.manifest)
    conditions = list(snakemake.params.conditions)
    statuses = [json.loads(open(p, encoding="utf-8").read()) for p in snakemake.input.statuses]
    params = {c: (None if s["skipped"] else load_params(p))
              for c, s, p in zip(conditions, statuses, snakemake.input.params)}
    utt_id = gallery_utterance(manifest["utt_id"], params)
    row = manifest.set_index("utt_id").loc[utt_id]
    clean = AudioStore.from_index(snakemake.input.index).read(utt_id)
    panels = []
    for c, status, index in zip(conditions, statuses, snakemake.input.indexes):
        subtitle = f"{status['family']} · {status['perception']}"
        if status["skipped"]:
            panels.append({"condition": c, "subtitle": subtitle, "reason": status["reason"]})
            continue
        record = params[c].set_index("utt_id").loc[utt_id]
        if record["status"] != "ok":
            panels.append({"condition": c, "subtitle": subtitle, "reason": f"{utt_id}: {record['status']}"})
            continue
        panels.append({"condition": c, "subtitle": f"{subtitle} · {snr_text(record['snr_measured'], bool(status.get('additive', True)))}",
                       "audio": AudioStore.from_index(index).read(utt_id)})
    title = (f"{snakemake.wildcards.corpus}: {utt_id} (speaker {row['speaker']}, {row['emotion']}), "
             f"{snakemake.params.pool} pool: log-mel spectrograms")
    plot_gallery(clean, panels, snakemake.output[0], title=title)
    log.info("gallery of %s under %d conditions -> %s", utt_id, len(panels), snakemake.output[0])
