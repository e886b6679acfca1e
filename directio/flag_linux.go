package directio

import "syscall"

// Flag opens a file for direct I/O (0 where direct I/O is not used).
const Flag = syscall.O_DIRECT
