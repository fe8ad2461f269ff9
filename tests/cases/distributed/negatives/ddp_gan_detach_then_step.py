# %%
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(0)

G = DDP(nn.Sequential(nn.Linear(5, 32), nn.ReLU(inplace=True), nn.Linear(32, 15)))
D = DDP(nn.Sequential(nn.Linear(15, 32), nn.LeakyReLU(0.2, inplace=True), nn.Linear(32, 1), nn.Sigmoid()))
opt_g = torch.optim.Adam(G.parameters(), lr=1e-3)
opt_d = torch.optim.Adam(D.parameters(), lr=1e-3)
bce = nn.BCELoss()

# %%
torch.manual_seed(1 + rank)
for _ in range(2):
    real = torch.sin(torch.linspace(-3, 3, 15)) + 0.02 * torch.randn(16, 15)
    fake = G(torch.randn(16, 5))

    opt_d.zero_grad()
    d_loss = bce(D(real), torch.ones(16, 1)) + bce(D(fake.detach()), torch.zeros(16, 1))
    d_loss.backward()
    opt_d.step()

    opt_g.zero_grad()
    g_loss = bce(D(fake), torch.ones(16, 1))
    g_loss.backward()
    opt_g.step()

# %%
dist.destroy_process_group()
