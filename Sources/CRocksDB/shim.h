#ifndef INFRANAUT_CROCKSDB_SHIM_H
#define INFRANAUT_CROCKSDB_SHIM_H
#include <rocksdb/c.h>
#endif
