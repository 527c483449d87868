#ifndef CLVS_SHIM_H
#define CLVS_SHIM_H
#endif
