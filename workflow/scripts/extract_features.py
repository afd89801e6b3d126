"""Rules extract_clean_features / extract_features: one feature archive per dataset (paper §7.2.1).

Clean: every prepared utterance (results/{corpus}/audio/index.csv).  Augmented (condition,
pool): the utterances of the dataset with status ok; a skipped condition gives an empty
archive (status.json says why), so downstream jobs see "no utterance" instead of failing.
Nothing here imports pandas (the CSVs are read with the csv module): it was ~0.2 s, almost half
of the job's start-up.
"""

import json
import time

from sernoise.audio_store import AudioStore
from sernoise.features import FeatureError, extract_store, write_feature_archive
from sernoise.io import read_csv_text_columns
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    out = snakemake.output[0]
    start = time.perf_counter()
    # The archive is compressed as the audio shards are (config prepare.compression, sernoise.hdf5_codecs).
    codec = {"compression": snakemake.params.prepare["compression"],
             "compression_level": snakemake.params.prepare["compression_level"]}
    if "status" in snakemake.input.keys():
        status = json.loads(open(snakemake.input.status, encoding="utf-8").read())
        wanted = None
        if status.get("skipped"):
            log.info("dataset skipped (%s): writing an empty archive", status.get("reason"))
            store = None
        else:
            store = AudioStore.from_index(snakemake.input.index)
            params = read_csv_text_columns(snakemake.input.params, ["utt_id", "status"], what="params ")
            wanted = sorted(u for u, s in zip(params["utt_id"], params["status"]) if s == "ok")
            missing = sorted(set(wanted) - set(store.utt_ids))
            if missing:
                raise FeatureError(f"{snakemake.input.index}: {len(missing)} utterance(s) with status ok are not "
                                   f"stored, e.g. {missing[:3]}")
            log.info("%d utterances with status ok of %d", len(wanted), len(params["utt_id"]))
    else:
        store = AudioStore.from_index(snakemake.input.index)
        wanted = sorted(store.utt_ids)
    if store is None or not wanted:
        count = write_feature_archive(out, [], **codec)
    else:
        count = extract_store(store, out, utt_ids=wanted, progress=log.info, **codec)
    log.info("%d utterances -> %s in %.1f s", count, out, time.perf_counter() - start)
