#!/usr/bin/env bash
# N popsweep workers on one study, as a Slurm job array: each array task is one worker on
# one GPU (or CPU node), and all of them share the study in PostgreSQL.
#
#   export POPSWEEP_STORAGE=postgresql://USER:PASSWORD@DBHOST:5432/sweeps
#   sbatch --array=0-7 deploy/slurm-workers.sh examples/digits-asha.yaml
#
# Workers may start late, fail or be preempted: a worker's running trials hold leases
# renewed every --heartbeat seconds, and a trial whose worker stops renewing is failed and
# re-queued (up to --max-retries) for whichever worker asks next. Resubmitting the array
# (or single tasks) joins the same study.
#SBATCH --job-name=popsweep
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --time=04:00:00
#SBATCH --requeue
#SBATCH --output=popsweep-%A_%a.log
set -euo pipefail

sweep="${1:?usage: sbatch --array=0-N slurm-workers.sh SWEEP.yaml [STUDY_NAME]}"
study="${2:-$(basename "$sweep" .yaml)}"
: "${POPSWEEP_STORAGE:?set POPSWEEP_STORAGE to the study's PostgreSQL URL}"

# Each worker keeps its own run directory (its summary, its snapshot of the study's
# records, the final evaluation if it is the last to finish).
exec popsweep run "$sweep" \
  --storage "$POPSWEEP_STORAGE" \
  --study-name "$study" \
  --out "runs/$study/worker-${SLURM_ARRAY_JOB_ID}-${SLURM_ARRAY_TASK_ID}" \
  --heartbeat 30 --max-retries 3
