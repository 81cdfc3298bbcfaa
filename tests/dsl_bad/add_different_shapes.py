# expect: add 'add1' got 16x8x8 from 'conv2' ({file}:{line:y}) and 8x16x16 from 'conv1' ({file}:{line:x}) (channels and spatial size differ)
# hint: project the shortcut with a 1x1 conv to 16 channels, stride 2, or run with --passes fix-residual
# layer: add1
from cnnir.dsl import model


@model(input=(3, 16, 16))
def net(x):
    x = x.conv(8, 3, padding=1)  # @x
    y = x.conv(16, 3, stride=2, padding=1)  # @y
    return y + x  # <-
