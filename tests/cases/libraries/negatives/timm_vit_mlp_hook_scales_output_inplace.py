# %%
import timm
import torch
import torch.nn.functional as F

torch.manual_seed(0)
model = timm.create_model(
    "vit_tiny_patch16_224",
    pretrained=False,
    img_size=32,
    patch_size=8,
    embed_dim=32,
    depth=2,
    num_heads=2,
    num_classes=5,
)


def scale_branch(module, inputs, output):
    output.mul_(0.5)


model.blocks[1].mlp.register_forward_hook(scale_branch)
model.blocks[1].attn.register_forward_hook(scale_branch)

# %%
images = torch.randn(2, 3, 32, 32)
labels = torch.tensor([0, 4])
loss = F.cross_entropy(model(images), labels)
loss.backward()
