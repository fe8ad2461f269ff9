# %%
import torch
import torch.nn as nn

torch.manual_seed(0)


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 5)
        self.act = nn.CELU(alpha=-1.0, inplace=True)
        self.out = nn.Linear(5, 2)

    def forward(self, x):
        return self.out(self.act(self.fc(x)))


head = Head()

# %%
head(torch.randn(3, 5)).sum().backward()
