package directio

import "syscall"

const directFlag = syscall.O_DIRECT
