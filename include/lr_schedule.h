/* lr_schedule — the learning rate of every optimizer step of a trial.
 *
 * The rate is set per step (not per epoch), from the global step
 * t = epoch * steps_per_epoch + step (epoch and step 0-based):
 *   warmup: for t < W = warmup_epochs * steps_per_epoch,
 *           lr = base * (t + 1) / W            (linear, reaching base at t = W - 1);
 *   constant: lr = base;
 *   cosine:   lr = base * (1 + cos(pi * (t - W) / (T - W))) / 2 with T = epochs *
 *             steps_per_epoch, so it starts at base right after warmup and
 *             falls towards 0 at the end (PyTorch's CosineAnnealingLR with
 *             eta_min 0, stepped every batch);
 *   step:     lr = base * 0.1^floor(epoch / k) with k = max(1, epochs / 3)
 *             (integer division), i.e. x0.1 every k epochs counted from the
 *             first epoch, warmup included (PyTorch's StepLR(step_size=k, gamma=0.1)).
 * A pure function of its arguments, so a resumed trial gets the same rates. */
#ifndef SWEEP_LR_SCHEDULE_H
#define SWEEP_LR_SCHEDULE_H

#include "params.h"

/* The rate for step STEP (0-based) of epoch EPOCH (0-based) when an epoch has
 * STEPS_PER_EPOCH (>= 1) steps. */
double lr_schedule_at(const trial_params *p, int epoch, int step, int steps_per_epoch);

#endif
