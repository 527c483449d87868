#include "clvs_shim.h"
