"""Training and fine-tuning: one loop (:mod:`.trainer`), shared losses (:mod:`.losses`)."""
from .losses import UncertaintyWeighting, batch_kl_loss, info_nce, l1_loss, mse_loss, plcc_loss, rank_loss
from .trainer import Fit, Task, TrainConfig, Trainer, epoch_order, seed_everything

__all__ = ["Fit", "Task", "TrainConfig", "Trainer", "UncertaintyWeighting", "batch_kl_loss", "epoch_order", "info_nce",
           "l1_loss", "mse_loss", "plcc_loss", "rank_loss", "seed_everything"]
