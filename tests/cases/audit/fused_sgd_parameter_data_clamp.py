# %%
import torch
import torch.nn as nn

torch.manual_seed(0)
critic = nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 1))
opt = torch.optim.SGD(critic.parameters(), lr=0.1, fused=True)

# %%
real, fake = torch.randn(8, 6), torch.randn(8, 6)
score_real = critic(real).mean()
score_fake = critic(fake).mean()
(score_fake - score_real).backward(retain_graph=True)
opt.step()
for p in critic.parameters():
    p.data.clamp_(-0.01, 0.01)  # WGAN weight clipping, before the second backward through this forward
penalty = score_real.pow(2)
penalty.backward()
