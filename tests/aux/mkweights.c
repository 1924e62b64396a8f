/* mkweights — writes a weights file of a known architecture for the tests:
 * the engine's own from-scratch model (resnet_create: torchvision names and
 * shapes, PyTorch's initialisation from SEED 1) saved by the safetensors
 * writer, with the given __metadata__ entries.
 *
 *   mkweights OUT.safetensors ARCH WIDTH CLASSES [KEY=VALUE ...]
 *
 * e.g. `mkweights r18.safetensors resnet18 4 3 input_size=32
 * 'mean=[0.5,0.5,0.5]'`. Exits 1 on error, naming it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resnet.h"
#include "safetensors.h"

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: mkweights OUT.safetensors ARCH WIDTH CLASSES [KEY=VALUE ...]\n");
        return 1;
    }
    char msg[512] = "";
    resnet *m = NULL;
    st_writer *w = st_writer_new();
    int rc = w ? resnet_create(&m, argv[2], atoi(argv[3]), atoi(argv[4]), 1, msg, sizeof msg) : 1;
    for (size_t i = 0; !rc && i < resnet_tensor_count(m); i++) {
        const resnet_tensor *t = resnet_tensor_at(m, i);
        rc = st_writer_add_f32(w, t->name, t->ndim, t->shape, t->data);
    }
    for (int a = 5; !rc && a < argc; a++) {
        char *eq = strchr(argv[a], '=');
        if (!eq) {
            snprintf(msg, sizeof msg, "%s: expected KEY=VALUE", argv[a]);
            rc = 1;
            break;
        }
        *eq = 0;
        rc = st_writer_meta(w, argv[a], eq + 1);
    }
    if (!rc) rc = st_writer_save(w, argv[1], msg, sizeof msg);
    if (rc) fprintf(stderr, "mkweights: %s\n", msg[0] ? msg : "cannot build the model");
    st_writer_free(w);
    resnet_free(m);
    return rc ? 1 : 0;
}
