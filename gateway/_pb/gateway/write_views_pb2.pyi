from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Marker(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SeriesKeysV1(_message.Message):
    __slots__ = ("timeseries",)
    TIMESERIES_FIELD_NUMBER: _ClassVar[int]
    timeseries: _containers.RepeatedCompositeFieldContainer[SeriesKey]
    def __init__(self, timeseries: _Optional[_Iterable[_Union[SeriesKey, _Mapping]]] = ...) -> None: ...

class SeriesKey(_message.Message):
    __slots__ = ("labels", "samples")
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.RepeatedScalarFieldContainer[bytes]
    samples: _containers.RepeatedCompositeFieldContainer[Marker]
    def __init__(self, labels: _Optional[_Iterable[bytes]] = ..., samples: _Optional[_Iterable[_Union[Marker, _Mapping]]] = ...) -> None: ...

class AllSamplesV1(_message.Message):
    __slots__ = ("timeseries",)
    TIMESERIES_FIELD_NUMBER: _ClassVar[int]
    timeseries: MergedSeries
    def __init__(self, timeseries: _Optional[_Union[MergedSeries, _Mapping]] = ...) -> None: ...

class AllSamplesV2(_message.Message):
    __slots__ = ("timeseries",)
    TIMESERIES_FIELD_NUMBER: _ClassVar[int]
    timeseries: MergedSeries
    def __init__(self, timeseries: _Optional[_Union[MergedSeries, _Mapping]] = ...) -> None: ...

class MergedSeries(_message.Message):
    __slots__ = ("samples", "v1_exemplars_v2_histograms", "v1_histograms_v2_exemplars")
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    V1_EXEMPLARS_V2_HISTOGRAMS_FIELD_NUMBER: _ClassVar[int]
    V1_HISTOGRAMS_V2_EXEMPLARS_FIELD_NUMBER: _ClassVar[int]
    samples: _containers.RepeatedScalarFieldContainer[bytes]
    v1_exemplars_v2_histograms: _containers.RepeatedCompositeFieldContainer[Marker]
    v1_histograms_v2_exemplars: _containers.RepeatedCompositeFieldContainer[Marker]
    def __init__(self, samples: _Optional[_Iterable[bytes]] = ..., v1_exemplars_v2_histograms: _Optional[_Iterable[_Union[Marker, _Mapping]]] = ..., v1_histograms_v2_exemplars: _Optional[_Iterable[_Union[Marker, _Mapping]]] = ...) -> None: ...

class MetadataV1(_message.Message):
    __slots__ = ("metadata",)
    METADATA_FIELD_NUMBER: _ClassVar[int]
    metadata: _containers.RepeatedCompositeFieldContainer[MetricMetadata]
    def __init__(self, metadata: _Optional[_Iterable[_Union[MetricMetadata, _Mapping]]] = ...) -> None: ...

class MetricMetadata(_message.Message):
    __slots__ = ("type", "metric_family_name", "help", "unit")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    METRIC_FAMILY_NAME_FIELD_NUMBER: _ClassVar[int]
    HELP_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    type: int
    metric_family_name: str
    help: str
    unit: str
    def __init__(self, type: _Optional[int] = ..., metric_family_name: _Optional[str] = ..., help: _Optional[str] = ..., unit: _Optional[str] = ...) -> None: ...

class RawSeriesV1(_message.Message):
    __slots__ = ("timeseries",)
    TIMESERIES_FIELD_NUMBER: _ClassVar[int]
    timeseries: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, timeseries: _Optional[_Iterable[bytes]] = ...) -> None: ...
