/// Pickle opcodes (CPython `pickletools`), protocols 0–5. The machine implements the binary
/// subset torch checkpoints use; the rest are named here only so errors can say which opcode
/// was refused.
enum PickleOpcode: UInt8 {
    // protocol 0/1 text forms and old object creation: refused
    case int = 0x49          // I
    case long = 0x4C         // L
    case float = 0x46        // F
    case string = 0x53       // S
    case unicode = 0x56      // V
    case put = 0x70          // p
    case get = 0x67          // g
    case persid = 0x50       // P
    case inst = 0x69         // i
    case obj = 0x6F          // o
    case ext1 = 0x82, ext2 = 0x83, ext4 = 0x84
    case nextBuffer = 0x97, readonlyBuffer = 0x98

    // stack and framing
    case proto = 0x80
    case frame = 0x95
    case stop = 0x2E         // .
    case mark = 0x28         // (
    case pop = 0x30          // 0
    case popMark = 0x31      // 1
    case dup = 0x32          // 2

    // containers
    case emptyDict = 0x7D    // }
    case emptyList = 0x5D    // ]
    case emptyTuple = 0x29   // )
    case emptySet = 0x8F
    case addItems = 0x90
    case frozenSet = 0x91
    case dict = 0x64         // d
    case list = 0x6C         // l
    case tuple = 0x74        // t
    case tuple1 = 0x85, tuple2 = 0x86, tuple3 = 0x87
    case setItem = 0x73      // s
    case setItems = 0x75     // u
    case append = 0x61       // a
    case appends = 0x65      // e

    // memo
    case binput = 0x71       // q
    case longBinput = 0x72   // r
    case memoize = 0x94
    case binget = 0x68       // h
    case longBinget = 0x6A   // j

    // scalars
    case binunicode = 0x58   // X
    case shortBinunicode = 0x8C
    case binunicode8 = 0x8D
    case binstring = 0x54    // T
    case shortBinstring = 0x55 // U
    case binbytes = 0x42     // B
    case shortBinbytes = 0x43 // C
    case binbytes8 = 0x8E
    case bytearray8 = 0x96
    case binint = 0x4A       // J
    case binint1 = 0x4B      // K
    case binint2 = 0x4D      // M
    case long1 = 0x8A
    case long4 = 0x8B
    case binfloat = 0x47     // G
    case newTrue = 0x88
    case newFalse = 0x89
    case none = 0x4E         // N

    // objects
    case global = 0x63       // c
    case stackGlobal = 0x93
    case reduce = 0x52       // R
    case build = 0x62        // b
    case newobj = 0x81
    case newobjEx = 0x92
    case binpersid = 0x51    // Q

    /// pickletools' upper-case name, for error messages.
    var name: String {
        switch self {
        case .int: return "INT"
        case .long: return "LONG"
        case .float: return "FLOAT"
        case .string: return "STRING"
        case .unicode: return "UNICODE"
        case .put: return "PUT"
        case .get: return "GET"
        case .persid: return "PERSID"
        case .inst: return "INST"
        case .obj: return "OBJ"
        case .ext1: return "EXT1"
        case .ext2: return "EXT2"
        case .ext4: return "EXT4"
        case .nextBuffer: return "NEXT_BUFFER"
        case .readonlyBuffer: return "READONLY_BUFFER"
        case .proto: return "PROTO"
        case .frame: return "FRAME"
        case .stop: return "STOP"
        case .mark: return "MARK"
        case .pop: return "POP"
        case .popMark: return "POP_MARK"
        case .dup: return "DUP"
        case .emptyDict: return "EMPTY_DICT"
        case .emptyList: return "EMPTY_LIST"
        case .emptyTuple: return "EMPTY_TUPLE"
        case .emptySet: return "EMPTY_SET"
        case .addItems: return "ADDITEMS"
        case .frozenSet: return "FROZENSET"
        case .dict: return "DICT"
        case .list: return "LIST"
        case .tuple: return "TUPLE"
        case .tuple1: return "TUPLE1"
        case .tuple2: return "TUPLE2"
        case .tuple3: return "TUPLE3"
        case .setItem: return "SETITEM"
        case .setItems: return "SETITEMS"
        case .append: return "APPEND"
        case .appends: return "APPENDS"
        case .binput: return "BINPUT"
        case .longBinput: return "LONG_BINPUT"
        case .memoize: return "MEMOIZE"
        case .binget: return "BINGET"
        case .longBinget: return "LONG_BINGET"
        case .binunicode: return "BINUNICODE"
        case .shortBinunicode: return "SHORT_BINUNICODE"
        case .binunicode8: return "BINUNICODE8"
        case .binstring: return "BINSTRING"
        case .shortBinstring: return "SHORT_BINSTRING"
        case .binbytes: return "BINBYTES"
        case .shortBinbytes: return "SHORT_BINBYTES"
        case .binbytes8: return "BINBYTES8"
        case .bytearray8: return "BYTEARRAY8"
        case .binint: return "BININT"
        case .binint1: return "BININT1"
        case .binint2: return "BININT2"
        case .long1: return "LONG1"
        case .long4: return "LONG4"
        case .binfloat: return "BINFLOAT"
        case .newTrue: return "NEWTRUE"
        case .newFalse: return "NEWFALSE"
        case .none: return "NONE"
        case .global: return "GLOBAL"
        case .stackGlobal: return "STACK_GLOBAL"
        case .reduce: return "REDUCE"
        case .build: return "BUILD"
        case .newobj: return "NEWOBJ"
        case .newobjEx: return "NEWOBJ_EX"
        case .binpersid: return "BINPERSID"
        }
    }
}
