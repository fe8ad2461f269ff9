# %%
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(0)

N_IDEAS = 5
ART_COMPONENTS = 15
BATCH_SIZE = 16

G = DDP(nn.Sequential(nn.Linear(N_IDEAS, 32), nn.ReLU(), nn.Linear(32, ART_COMPONENTS)))
D = DDP(
    nn.Sequential(
        nn.Linear(ART_COMPONENTS, 32),
        nn.ReLU(),
        nn.Linear(32, 1),
        nn.Sigmoid(),
    )
)
opt_g = torch.optim.Adam(G.parameters(), lr=1e-3)
opt_d = torch.optim.Adam(D.parameters(), lr=1e-3)

# %%
torch.manual_seed(1 + rank)
for _ in range(2):
    real = torch.sin(torch.linspace(-3, 3, ART_COMPONENTS)) + 0.02 * torch.randn(BATCH_SIZE, ART_COMPONENTS)
    fake = G(torch.randn(BATCH_SIZE, N_IDEAS))
    prob_real = D(real)
    prob_fake = D(fake)

    d_loss = -torch.mean(torch.log(prob_real) + torch.log(1.0 - prob_fake))
    g_loss = torch.mean(torch.log(1.0 - prob_fake))

    opt_d.zero_grad()
    d_loss.backward(retain_graph=True)
    opt_d.step()

    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()

# %%
dist.destroy_process_group()
